package store

import (
	"context"
	"slices"
	"testing"
)

func TestQuery(t *testing.T) {
	db, _ := openTemp(t)
	ctx := context.Background()
	if err := db.Migrate(ctx, "widgets", widgetMigs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO widgets (name) VALUES ('b'), ('a'), ('c')`); err != nil {
		t.Fatal(err)
	}
	name := func(r Row) (string, error) {
		var s string
		err := r.Scan(&s)
		return s, err
	}
	tests := []struct {
		name    string
		query   string
		want    []string
		wantErr bool
	}{
		{"in result order", `SELECT name FROM widgets WHERE name != ? ORDER BY name DESC`, []string{"c", "a"}, false},
		{"no rows", `SELECT name FROM widgets WHERE name = ? AND colour = 'red'`, nil, false},
		{"bad query", `SELECT nothing FROM widgets WHERE name = ?`, nil, true},
		{"scan error", `SELECT name, colour FROM widgets WHERE name != ?`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Query(ctx, db, name, tt.query, "b")
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("Query = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
