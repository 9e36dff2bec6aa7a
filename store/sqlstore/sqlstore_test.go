package sqlstore

import "testing"

func TestRebindDollar(t *testing.T) {
	cases := []struct{ in, want string }{
		{"SELECT 1", "SELECT 1"},
		{"WHERE a = ? AND b = ?", "WHERE a = $1 AND b = $2"},
		{"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
	}
	for _, tc := range cases {
		if got := RebindDollar(tc.in); got != tc.want {
			t.Errorf("RebindDollar(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
