package printers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

const (
	none    = "<none>"
	unknown = "<unknown>"
	unset   = "<unset>"

	// listCellMax is how many entries list-valued cells (endpoints, ports)
	// show before summarising the rest as "+ N more...".
	listCellMax = 3
)

var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

// nameColumn and ageColumn are shared by nearly every table.
var (
	nameColumn = metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
	ageColumn  = metav1.TableColumnDefinition{Name: "Age", Type: "string", Description: objectMetaDoc["creationTimestamp"]}

	containersColumn = metav1.TableColumnDefinition{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."}
	imagesColumn     = metav1.TableColumnDefinition{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."}
)

// since renders the age of t at now; a zero time has no meaningful age.
func since(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// sinceMicro is since for MicroTime (events.k8s.io style timestamps).
func sinceMicro(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return unknown
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// containerCells lays out the names and images of containers on one line
// each, comma-joined, the way the wide columns show them.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

// truncatedList joins the first listCellMax entries of a list of total
// entries and summarises the rest; empty shows as "<unset>".
func truncatedList(shown []string, total int) string {
	s := strings.Join(shown, ",")
	if total > len(shown) {
		return fmt.Sprintf("%s + %d more...", s, total-len(shown))
	}
	if s == "" {
		return unset
	}
	return s
}

// int32Or returns *p, or def when the field was left to defaulting.
func int32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}
