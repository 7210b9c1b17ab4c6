package iptables_test

import (
	"testing"

	"github.com/portal-net/portal/internal/testutil/netnstest"
)

func TestMain(m *testing.M) { netnstest.Main(m) }
