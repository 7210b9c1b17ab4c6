package printers

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
)

// RowFunc renders the cells of a single object, one per column definition.
// now is read once per conversion so every row of a list ages against the
// same instant.
type RowFunc func(obj runtime.Object, now time.Time) ([]interface{}, error)

// ConditionsFunc reports row conditions (e.g. metav1.RowCompleted) for a
// single object; clients may use them to de-emphasise finished objects.
type ConditionsFunc func(obj runtime.Object) []metav1.TableRowCondition

// Row binds a RowFunc to the Go type it renders. Build one with RowOf.
type Row struct {
	typ        reflect.Type
	cells      RowFunc
	conditions ConditionsFunc
}

// RowOf returns the Row for objects of Go type T (a pointer type such as
// *corev1.Pod).
func RowOf[T runtime.Object](fn func(obj T, now time.Time) ([]interface{}, error)) Row {
	return Row{
		typ: reflect.TypeFor[T](),
		cells: func(obj runtime.Object, now time.Time) ([]interface{}, error) {
			return fn(obj.(T), now)
		},
	}
}

// WithConditions returns a copy of r that also reports row conditions.
func (r Row) WithConditions(fn ConditionsFunc) Row {
	r.conditions = fn
	return r
}

// TableConvertor converts objects and lists of the Go types it has rows for
// into metav1.Table. It implements rest.TableConvertor.
type TableConvertor struct {
	columns []metav1.TableColumnDefinition
	rows    map[reflect.Type]Row
	now     func() time.Time
}

var _ rest.TableConvertor = &TableConvertor{}

// NewTableConvertor returns a convertor with the given columns (Priority 1
// marks -o wide columns) and one Row per accepted Go type. It panics when two
// rows claim the same type: that is a programming error in a static table.
func NewTableConvertor(columns []metav1.TableColumnDefinition, rows ...Row) *TableConvertor {
	c := &TableConvertor{
		columns: columns,
		rows:    make(map[reflect.Type]Row, len(rows)),
		now:     time.Now,
	}
	for _, r := range rows {
		if _, dup := c.rows[r.typ]; dup {
			panic(fmt.Sprintf("printers: two rows registered for %v", r.typ))
		}
		c.rows[r.typ] = r
	}
	return c
}

// WithClock returns a copy of c that reads the current time from now, so
// tests get deterministic AGE cells.
func (c *TableConvertor) WithClock(now func() time.Time) *TableConvertor {
	out := *c
	out.now = now
	return &out
}

// ColumnDefinitions returns a copy of the convertor's columns.
func (c *TableConvertor) ColumnDefinitions() []metav1.TableColumnDefinition {
	return append([]metav1.TableColumnDefinition(nil), c.columns...)
}

// ConvertToTable implements rest.TableConvertor. tableOptions may be nil or a
// *metav1.TableOptions.
func (c *TableConvertor) ConvertToTable(_ context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	noHeaders := false
	switch opts := tableOptions.(type) {
	case nil:
	case *metav1.TableOptions:
		if opts != nil {
			noHeaders = opts.NoHeaders
		}
	default:
		return nil, fmt.Errorf("unrecognized type %T for table options, can't display tabular output", tableOptions)
	}

	now := c.now()
	table := &metav1.Table{Rows: []metav1.TableRow{}}
	if meta.IsListType(object) {
		items, err := meta.ExtractList(object)
		if err != nil {
			return nil, fmt.Errorf("extracting items of %T: %w", object, err)
		}
		table.Rows = make([]metav1.TableRow, 0, len(items))
		for _, item := range items {
			row, err := c.row(item, now)
			if err != nil {
				return nil, err
			}
			table.Rows = append(table.Rows, row)
		}
	} else {
		row, err := c.row(object, now)
		if err != nil {
			return nil, err
		}
		table.Rows = append(table.Rows, row)
	}

	if m, err := meta.ListAccessor(object); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
		table.Continue = m.GetContinue()
		table.RemainingItemCount = m.GetRemainingItemCount()
	} else if m, err := meta.CommonAccessor(object); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}
	if !noHeaders {
		table.ColumnDefinitions = c.ColumnDefinitions()
	}
	return table, nil
}

func (c *TableConvertor) row(obj runtime.Object, now time.Time) (metav1.TableRow, error) {
	r, ok := c.rows[reflect.TypeOf(obj)]
	if !ok {
		return metav1.TableRow{}, fmt.Errorf("no table row printer registered for %T", obj)
	}
	cells, err := r.cells(obj, now)
	if err != nil {
		return metav1.TableRow{}, fmt.Errorf("printing %T: %w", obj, err)
	}
	// A short or long row would silently shift every later column in
	// kubectl's output, so refuse it outright.
	if len(cells) != len(c.columns) {
		return metav1.TableRow{}, fmt.Errorf("printing %T: %d cells for %d columns", obj, len(cells), len(c.columns))
	}
	row := metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}}
	if r.conditions != nil {
		row.Conditions = r.conditions(obj)
	}
	return row, nil
}
