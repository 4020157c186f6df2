package queue_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/switchboard/switchboard/internal/queue"
	"github.com/switchboard/switchboard/internal/store"
)

func TestExplainTmp(t *testing.T) {
	url := os.Getenv("EXPLAIN_DB")
	if url == "" {
		t.Skip()
	}
	db, err := store.Open(context.Background(), url, "")
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, db, queue.Options{})
	var kinds []string
	db.Gorm.Raw(`SELECT DISTINCT kind FROM jobs ORDER BY 1`).Scan(&kinds)
	s, err := q.ExplainClaim(context.Background(), 4, kinds)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(s)
}
