package apiserver

import "crypto/tls"

// insecureTLS is for anonymous probes of the health endpoints in tests only.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } //nolint:gosec
