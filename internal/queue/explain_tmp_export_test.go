package queue

import (
	"context"
	"encoding/json"
	"strings"

	"gorm.io/gorm"

	"github.com/switchboard/switchboard/internal/store"
)

func (q *Queue) ExplainClaim(ctx context.Context, n int, kinds []string) (string, error) {
	q.kinds = kinds
	now := store.Now()
	until := now.Add(q.opts.Lease)
	laneJSON, _ := json.Marshal(q.laneCursors)
	lanes := string(laneJSON)
	var out []string
	err := q.db.Gorm.Transaction(func(tx *gorm.DB) error {
		tx.Exec("SET LOCAL jit = off")
		for _, qq := range []struct {
			sql  string
			args []any
		}{
			{walkPostgres, []any{q.opts.InstanceID, until, now, q.window, now, q.kinds, n, lanes, n, q.cursor, now, n}},
			{scanPostgres, []any{q.opts.InstanceID, until, now, now, q.kinds, lanes, n, now, q.cursor, n}},
		} {
			rows, err := tx.Raw("EXPLAIN (ANALYZE, BUFFERS) "+qq.sql, qq.args...).Rows()
			if err != nil {
				return err
			}
			for rows.Next() {
				var l string
				rows.Scan(&l)
				out = append(out, l)
			}
			rows.Close()
			out = append(out, "-----")
		}
		return errRollback
	})
	if err != errRollback {
		return "", err
	}
	return strings.Join(out, "\n"), nil
}

var errRollback = errorString("rollback")

type errorString string

func (e errorString) Error() string { return string(e) }
