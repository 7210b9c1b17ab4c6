package printers

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// testNow is the fixed clock every test converts against.
var testNow = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(testNow.Add(-d)) }

func fixedClock() time.Time { return testNow }

// convert runs c against testNow and fails the test on error.
func convert(t *testing.T, c *TableConvertor, obj runtime.Object, opts runtime.Object) *metav1.Table {
	t.Helper()
	table, err := c.WithClock(fixedClock).ConvertToTable(context.Background(), obj, opts)
	if err != nil {
		t.Fatalf("ConvertToTable(%T): %v", obj, err)
	}
	return table
}

// cells converts a single object and returns its only row's cells.
func cells(t *testing.T, c *TableConvertor, obj runtime.Object) []interface{} {
	t.Helper()
	table := convert(t, c, obj, nil)
	if len(table.Rows) != 1 {
		t.Fatalf("got %d rows, want 1", len(table.Rows))
	}
	return table.Rows[0].Cells
}

func assertCells(t *testing.T, got, want []interface{}) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cells mismatch\n got: %#v\nwant: %#v", got, want)
	}
}

type col struct {
	name     string
	priority int32
}

// assertColumns checks the column names and -o wide priorities.
func assertColumns(t *testing.T, c *TableConvertor, want []col) {
	t.Helper()
	var got []col
	for _, d := range c.ColumnDefinitions() {
		got = append(got, col{d.Name, d.Priority})
		if d.Description == "" {
			t.Errorf("column %q has no description", d.Name)
		}
		if d.Type != "string" && d.Type != "integer" {
			t.Errorf("column %q has type %q", d.Name, d.Type)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns mismatch\n got: %v\nwant: %v", got, want)
	}
}

func testNamespaceTable() *TableConvertor { return NamespaceTable() }

func TestConvertSingleObject(t *testing.T) {
	ns := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-system", ResourceVersion: "42", CreationTimestamp: ago(3 * time.Hour)},
		Status:     corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
	}
	table := convert(t, testNamespaceTable(), ns, &metav1.TableOptions{})

	if table.ResourceVersion != "42" {
		t.Errorf("resourceVersion = %q, want 42", table.ResourceVersion)
	}
	if len(table.ColumnDefinitions) != 3 || table.ColumnDefinitions[0].Name != "Name" || table.ColumnDefinitions[0].Format != "name" {
		t.Errorf("column definitions = %+v", table.ColumnDefinitions)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("rows = %d", len(table.Rows))
	}
	assertCells(t, table.Rows[0].Cells, []interface{}{"kube-system", "Active", "3h"})
	if table.Rows[0].Object.Object != ns {
		t.Errorf("row object = %v, want the namespace itself", table.Rows[0].Object.Object)
	}
}

func TestConvertListCopiesListMetadata(t *testing.T) {
	remaining := int64(7)
	list := &corev1.NamespaceList{
		ListMeta: metav1.ListMeta{ResourceVersion: "1001", Continue: "token-abc", RemainingItemCount: &remaining},
		Items: []corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "default", ResourceVersion: "5", CreationTimestamp: ago(48 * time.Hour)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive}},
			{ObjectMeta: metav1.ObjectMeta{Name: "doomed", CreationTimestamp: ago(90 * time.Second)}, Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating}},
		},
	}
	table := convert(t, testNamespaceTable(), list, nil)

	if table.ResourceVersion != "1001" || table.Continue != "token-abc" {
		t.Errorf("list meta = rv %q continue %q", table.ResourceVersion, table.Continue)
	}
	if table.RemainingItemCount == nil || *table.RemainingItemCount != 7 {
		t.Errorf("remainingItemCount = %v, want 7", table.RemainingItemCount)
	}
	if len(table.Rows) != 2 {
		t.Fatalf("rows = %d, want 2", len(table.Rows))
	}
	assertCells(t, table.Rows[0].Cells, []interface{}{"default", "Active", "2d"})
	assertCells(t, table.Rows[1].Cells, []interface{}{"doomed", "Terminating", "90s"})
	if got := table.Rows[1].Object.Object.(*corev1.Namespace).Name; got != "doomed" {
		t.Errorf("row 1 object = %q", got)
	}
}

func TestConvertEmptyListHasEmptyRows(t *testing.T) {
	table := convert(t, testNamespaceTable(), &corev1.NamespaceList{ListMeta: metav1.ListMeta{ResourceVersion: "9"}}, nil)
	// kubectl prints "No resources found" for an empty rows array; keep it
	// an array rather than null on the wire.
	if table.Rows == nil || len(table.Rows) != 0 {
		t.Errorf("rows = %#v, want empty non-nil", table.Rows)
	}
	if table.ResourceVersion != "9" {
		t.Errorf("resourceVersion = %q", table.ResourceVersion)
	}
}

func TestConvertNoHeaders(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}}
	table := convert(t, testNamespaceTable(), ns, &metav1.TableOptions{NoHeaders: true})
	if table.ColumnDefinitions != nil {
		t.Errorf("column definitions = %+v, want none", table.ColumnDefinitions)
	}
	assertCells(t, table.Rows[0].Cells, []interface{}{"a", "", "<unknown>"})
}

func TestConvertErrors(t *testing.T) {
	twoColumns := []metav1.TableColumnDefinition{nameColumn, ageColumn}
	shortRow := NewTableConvertor(twoColumns, RowOf(func(ns *corev1.Namespace, _ time.Time) ([]interface{}, error) {
		return []interface{}{ns.Name}, nil
	}))
	tests := []struct {
		name    string
		c       *TableConvertor
		obj     runtime.Object
		opts    runtime.Object
		wantErr string
	}{
		{"unregistered type", testNamespaceTable(), &corev1.Pod{}, nil, "no table row printer registered for *v1.Pod"},
		{"unregistered list item", testNamespaceTable(), &corev1.PodList{Items: []corev1.Pod{{}}}, nil, "no table row printer registered for *v1.Pod"},
		{"row shorter than columns", shortRow, &corev1.Namespace{}, nil, "printing *v1.Namespace: 1 cells for 2 columns"},
		{"foreign table options", testNamespaceTable(), &corev1.Namespace{}, &metav1.GetOptions{}, "unrecognized type *v1.GetOptions for table options"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.ConvertToTable(context.Background(), tt.obj, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewTableConvertorRejectsDuplicateRows(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("want panic for two rows of one type")
		}
	}()
	row := RowOf(func(*corev1.Namespace, time.Time) ([]interface{}, error) { return nil, nil })
	NewTableConvertor(nil, row, row)
}

func TestWithClockDoesNotMutateOriginal(t *testing.T) {
	c := testNamespaceTable()
	_ = c.WithClock(fixedClock)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))}}
	table, err := c.ConvertToTable(context.Background(), ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := table.Rows[0].Cells[2]; got != "60m" {
		t.Errorf("age with real clock = %v, want 60m", got)
	}
}

func TestForKnowsEveryResource(t *testing.T) {
	if len(Resources()) != len(tables) {
		t.Fatalf("Resources() = %d entries, tables = %d", len(Resources()), len(tables))
	}
	for _, gr := range Resources() {
		c, ok := For(gr)
		if !ok || c == nil {
			t.Errorf("For(%v) = %v, %v", gr, c, ok)
			continue
		}
		defs := c.ColumnDefinitions()
		if len(defs) == 0 {
			t.Errorf("%v: no columns", gr)
		}
		hasName := false
		for _, d := range defs {
			hasName = hasName || (d.Name == "Name" && d.Format == "name")
		}
		if !hasName {
			t.Errorf("%v: no Name column", gr)
		}
	}
	if _, ok := For(schema.GroupResource{Resource: "widgets"}); ok {
		t.Error("For(widgets) ok, want false")
	}
}

func ptrTo[T any](v T) *T { return &v }
