package store_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/storetest"
)

// counterPick is a picker whose state is the number of picks so far and
// whose choice is that number: if two callers ever read the same state
// (the lock failed), two customers get the same "user" and one number is
// skipped, which the tests below see.
func counterPick(state string) (string, string, error) {
	n := 0
	if state != "" {
		var err error
		if n, err = strconv.Atoi(state); err != nil {
			return "", "", err
		}
	}
	return "n" + strconv.Itoa(n), strconv.Itoa(n + 1), nil
}

// assignAll asks for each of customers' owner from every store at once
// (workers goroutines per store) and returns the owners, failing on any
// customer given two owners or made fresh other than once.
func assignAll(t *testing.T, stores []*store.Store, scope string, customers, workers int, pick store.OwnerPicker) map[string]string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	owners := map[string]string{}
	fresh := map[string]int{}
	var wg sync.WaitGroup
	for _, st := range stores {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(st *store.Store, w int) {
				defer wg.Done()
				// Every worker asks for every customer, starting at a
				// different place, so each customer is raced for.
				for i := 0; i < customers; i++ {
					c := fmt.Sprintf("c%03d", (i+w*customers/workers)%customers)
					uid, isFresh, err := st.AssignOwner(ctx, scope, c, pick)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if prev, ok := owners[c]; ok && prev != uid {
						t.Errorf("customer %s got owners %s and %s", c, prev, uid)
					}
					owners[c] = uid
					if isFresh {
						fresh[c]++
					}
					mu.Unlock()
				}
			}(st, w)
		}
	}
	wg.Wait()
	for c := range owners {
		if fresh[c] != 1 {
			t.Errorf("customer %s was assigned fresh %d times, want 1", c, fresh[c])
		}
	}
	if len(owners) != customers {
		t.Errorf("%d customers have owners, want %d", len(owners), customers)
	}
	return owners
}

// checkOnePickEach: the picker ran exactly once per customer, each run on
// the state the previous one left: the owners are n0..n(customers-1), each
// once.
func checkOnePickEach(t *testing.T, owners map[string]string, customers int) {
	t.Helper()
	seen := map[string]string{}
	for c, u := range owners {
		if other, dup := seen[u]; dup {
			t.Fatalf("pick %s was handed to %s and %s: two callers read one rotation state", u, c, other)
		}
		seen[u] = c
	}
	for i := 0; i < customers; i++ {
		if _, ok := seen["n"+strconv.Itoa(i)]; !ok {
			t.Fatalf("pick n%d is missing: %v", i, seen)
		}
	}
}

func TestAssignOwnerPicksOncePerCustomer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		owners := assignAll(t, []*store.Store{st}, "b:1", 60, 4, counterPick)
		checkOnePickEach(t, owners, 60)
		// Another scope has its own rotation.
		uid, fresh, err := st.AssignOwner(context.Background(), "b:2", "c000", counterPick)
		if err != nil || uid != "n0" || !fresh {
			t.Fatalf("first pick in a new scope: %q fresh=%v err=%v, want n0 fresh", uid, fresh, err)
		}
		counts, err := st.OwnerCounts(context.Background(), "b:1")
		if err != nil || len(counts) != 60 || counts["n7"] != 1 {
			t.Fatalf("owner counts: %v %v", counts, err)
		}
	})
}

// Two gateway instances on one PostgreSQL: the rotation row's lock, not a
// mutex in one process, keeps the picks in a line.
func TestAssignOwnerAcrossInstances(t *testing.T) {
	url := storetest.URL(t)
	var stores []*store.Store
	for i := 0; i < 2; i++ {
		db, err := store.Open(context.Background(), url, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		stores = append(stores, testStore(t, db))
	}
	owners := assignAll(t, stores, "b:1", 200, 6, counterPick)
	checkOnePickEach(t, owners, 200)
}

func TestAssignOwnerPickerErrorChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		if _, _, err := st.AssignOwner(ctx, "b:1", "c1", counterPick); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("nobody active")
		failing := func(string) (string, string, error) { return "", "999", boom }
		if _, _, err := st.AssignOwner(ctx, "b:1", "c2", failing); !errors.Is(err, boom) {
			t.Fatalf("picker error: got %v, want it wrapped", err)
		}
		if _, err := st.OwnerOf(ctx, "b:1", "c2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a failed pick left an owner: %v", err)
		}
		// The state the failing picker returned was not stored: the next
		// pick continues from the first one's.
		uid, _, err := st.AssignOwner(ctx, "b:1", "c2", counterPick)
		if err != nil || uid != "n1" {
			t.Fatalf("after a failed pick: %q %v, want n1", uid, err)
		}
		nobody := func(string) (string, string, error) { return "", "5", nil }
		if _, _, err := st.AssignOwner(ctx, "b:1", "c3", nobody); err == nil {
			t.Fatal("a picker choosing nobody without an error was accepted")
		}
	})
}

func TestAssignOwnerReturningCustomerDoesNotPick(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		calls := 0
		pick := func(s string) (string, string, error) { calls++; return counterPick(s) }
		for i := 0; i < 3; i++ {
			uid, fresh, err := st.AssignOwner(ctx, "b:1", "c1", pick)
			if err != nil || uid != "n0" || fresh != (i == 0) {
				t.Fatalf("ask %d: %q fresh=%v %v", i, uid, fresh, err)
			}
		}
		if calls != 1 {
			t.Fatalf("picker ran %d times for one customer", calls)
		}
		if _, _, err := st.AssignOwner(ctx, "", "c1", pick); err == nil {
			t.Fatal("empty scope key accepted")
		}
	})
}

func TestClaimFirstResponder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		st := testStore(t, db)
		ctx := context.Background()
		owner, won, err := st.ClaimFirstResponder(ctx, "b:1", "c1", "7")
		if err != nil || owner != "7" || !won {
			t.Fatalf("first claim: %q won=%v %v", owner, won, err)
		}
		owner, won, err = st.ClaimFirstResponder(ctx, "b:1", "c1", "8")
		if err != nil || owner != "7" || won {
			t.Fatalf("second claim: %q won=%v %v, want owner 7 and lost", owner, won, err)
		}
		// The winner's retry (a job run again) still wins.
		if owner, won, err = st.ClaimFirstResponder(ctx, "b:1", "c1", "7"); err != nil || !won || owner != "7" {
			t.Fatalf("retried claim: %q won=%v %v", owner, won, err)
		}
		// A claimed customer is not rotated: the rotation neither picks nor
		// advances.
		uid, fresh, err := st.AssignOwner(ctx, "b:1", "c1", counterPick)
		if err != nil || uid != "7" || fresh {
			t.Fatalf("rotation over a claimed customer: %q fresh=%v %v", uid, fresh, err)
		}
		// And a rotated customer cannot be claimed.
		if _, _, err := st.AssignOwner(ctx, "b:1", "c2", counterPick); err != nil {
			t.Fatal(err)
		}
		if owner, won, err = st.ClaimFirstResponder(ctx, "b:1", "c2", "8"); err != nil || won || owner != "n0" {
			t.Fatalf("claim of a rotated customer: %q won=%v %v", owner, won, err)
		}
		if err := st.DeleteOwnerScope(ctx, "b:1"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.OwnerOf(ctx, "b:1", "c1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("owner after the scope was deleted: %v", err)
		}
		if uid, _, err := st.AssignOwner(ctx, "b:1", "c9", counterPick); err != nil || uid != "n0" {
			t.Fatalf("a deleted scope's rotation restarts: %q %v", uid, err)
		}
	})
}

// Many users answer the same customer at once, from two instances on
// PostgreSQL (one on SQLite): exactly one wins and everybody is told the
// same owner.
func TestClaimFirstResponderRace(t *testing.T) {
	run := func(t *testing.T, stores []*store.Store) {
		ctx := context.Background()
		for c := 0; c < 20; c++ {
			contact := fmt.Sprintf("c%d", c)
			const users = 8
			owners := make([]string, users)
			wins := make([]bool, users)
			var wg sync.WaitGroup
			for u := 0; u < users; u++ {
				wg.Add(1)
				go func(u int) {
					defer wg.Done()
					var err error
					owners[u], wins[u], err = stores[u%len(stores)].ClaimFirstResponder(ctx, "b:1", contact, strconv.Itoa(u))
					if err != nil {
						t.Error(err)
					}
				}(u)
			}
			wg.Wait()
			winners := 0
			for u := 0; u < users; u++ {
				if owners[u] != owners[0] {
					t.Fatalf("%s: claimants were told owners %q and %q", contact, owners[0], owners[u])
				}
				if wins[u] {
					winners++
					if owners[u] != strconv.Itoa(u) {
						t.Fatalf("%s: user %d won but the owner is %s", contact, u, owners[u])
					}
				}
			}
			if winners != 1 {
				t.Fatalf("%s: %d claimants won, want 1", contact, winners)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		run(t, []*store.Store{testStore(t, storetest.SQLite(t))})
	})
	t.Run("postgres", func(t *testing.T) {
		url := storetest.URL(t)
		var stores []*store.Store
		for i := 0; i < 2; i++ {
			db, err := store.Open(context.Background(), url, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			stores = append(stores, testStore(t, db))
		}
		run(t, stores)
	})
}
