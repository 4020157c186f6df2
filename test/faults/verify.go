package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
)

// storedInbound counts the channel's inbound messages per wamid.
func (c *cluster) storedInbound(ctx context.Context) (map[string]int, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT external_id, COUNT(*) FROM messages
		WHERE channel_id = $1 AND direction = 'in' GROUP BY external_id`, c.channel)
	if err != nil {
		return nil, fmt.Errorf("count stored messages: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// jobStates counts jobs by state and kind ("state kind" → n); done jobs
// are deleted, so only pending ("later" when due in the future), running
// and dead ones are left.
func (c *cluster) jobStates(ctx context.Context) (map[string]int, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT CASE WHEN state = 'pending' AND run_at > now() THEN 'later' ELSE state END,
		kind, COUNT(*) FROM jobs GROUP BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state, kind string
		var n int
		if err := rows.Scan(&state, &kind, &n); err != nil {
			return nil, err
		}
		out[state+" "+kind] = n
	}
	return out, rows.Err()
}

// runningOf returns the ids of running jobs whose lock names pid.
func (c *cluster) runningOf(ctx context.Context, pid int) ([]int64, error) {
	ids, _, err := c.runningKinds(ctx, pid)
	return ids, err
}

// runningKinds is runningOf with the jobs' kinds.
func (c *cluster) runningKinds(ctx context.Context, pid int) ([]int64, []string, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, locked_by, kind FROM jobs WHERE state = 'running'`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ids []int64
	var kinds []string
	mark := fmt.Sprintf("-%d-", pid)
	for rows.Next() {
		var id int64
		var by, kind string
		if err := rows.Scan(&id, &by, &kind); err != nil {
			return nil, nil, err
		}
		if strings.Contains(by, mark) {
			ids = append(ids, id)
			kinds = append(kinds, kind)
		}
	}
	return ids, kinds, rows.Err()
}

// stillHeld returns those of ids that are still running under pid's lock.
func (c *cluster) stillHeld(ctx context.Context, ids []int64, pid int) (int, error) {
	held, err := c.runningOf(ctx, pid)
	if err != nil {
		return 0, err
	}
	set := map[int64]bool{}
	for _, id := range held {
		set[id] = true
	}
	n := 0
	for _, id := range ids {
		if set[id] {
			n++
		}
	}
	return n, nil
}

// jobsLeft counts the jobs running, or due by asOf (when the drain found
// nothing due), and the dead ones. Jobs due later (an unanswered dialog's
// escalation, armed minutes ahead) are not work left over, even when one
// falls due between the drain and this count.
func (c *cluster) jobsLeft(ctx context.Context, asOf time.Time) (busy, dead int, err error) {
	err = c.db.QueryRowContext(ctx, `SELECT
		COUNT(*) FILTER (WHERE state = 'running' OR (state = 'pending' AND run_at <= $1)),
		COUNT(*) FILTER (WHERE state = 'dead') FROM jobs`, asOf).Scan(&busy, &dead)
	return busy, dead, err
}

// crmInbound counts the messages the portal's Open Line received per
// external message id (the wamid).
func (c *cluster) crmInbound() map[string]int {
	out := map[string]int{}
	for _, l := range c.portal.Lines() {
		for _, m := range l.Messages() {
			if m.Direction == b24sim.Inbound {
				out[m.ExternalID]++
			}
		}
	}
	return out
}

// limitRefusals counts REST calls the portal refused for its rate limit.
func (c *cluster) limitRefusals() int {
	n := 0
	for _, call := range c.b24.Calls("") {
		if call.ErrorCode == "QUERY_LIMIT_EXCEEDED" {
			n++
		}
	}
	return n
}

// drain waits until no job is running or due, or until timeout. It
// returns how long that took and how long until the portal had every
// stored message (-1 if it never did).
func (c *cluster) drain(ctx context.Context, timeout time.Duration) (took, crm time.Duration, ok bool) {
	start := time.Now()
	crm = -1
	for time.Since(start) < timeout && ctx.Err() == nil {
		if crm < 0 {
			if st, err := c.storedInbound(ctx); err == nil && len(c.crmInbound()) >= len(st) {
				crm = time.Since(start)
			}
		}
		busy, _, err := c.jobsLeft(ctx, time.Now())
		if err == nil && busy == 0 {
			return time.Since(start), crm, true
		}
		time.Sleep(500 * time.Millisecond)
	}
	return time.Since(start), crm, false
}

// exactness compares acknowledged, stored and CRM-delivered wamids.
type exactness struct {
	acked, stored, storedDup, ackedMissing, storedNotAcked int
	crm, crmDup, crmMissing, crmUnknown                    int
	dupSample, missSample                                  []string
}

func (c *cluster) checkExactness(ctx context.Context, acked map[string]int) (exactness, error) {
	var e exactness
	stored, err := c.storedInbound(ctx)
	if err != nil {
		return e, err
	}
	crm := c.crmInbound()
	e.acked = len(acked)
	e.stored = len(stored)
	for id, n := range stored {
		if n > 1 {
			e.storedDup++
			if len(e.dupSample) < 3 {
				e.dupSample = append(e.dupSample, fmt.Sprintf("stored %s ×%d", id, n))
			}
		}
		if _, ok := acked[id]; !ok {
			e.storedNotAcked++
		}
		switch m := crm[id]; {
		case m == 0:
			e.crmMissing++
			if len(e.missSample) < 3 {
				e.missSample = append(e.missSample, "not in CRM "+id)
			}
		case m > 1:
			e.crmDup++
			if len(e.dupSample) < 6 {
				e.dupSample = append(e.dupSample, fmt.Sprintf("CRM %s ×%d", id, m))
			}
		}
	}
	for id := range acked {
		if stored[id] == 0 {
			e.ackedMissing++
			if len(e.missSample) < 6 {
				e.missSample = append(e.missSample, "acked, not stored "+id)
			}
		}
	}
	for id, n := range crm {
		e.crm += n
		if stored[id] == 0 {
			e.crmUnknown++
		}
	}
	return e, nil
}

func (e exactness) ok() bool {
	return e.ackedMissing == 0 && e.storedDup == 0 && e.crmDup == 0 && e.crmMissing == 0 && e.crmUnknown == 0
}

// row is one line of the summary table.
type row struct {
	check, value string
	ok           *bool // nil: information only
}

func yes(b bool) *bool { return &b }

func printTable(w io.Writer, title string, rows []row) bool {
	fmt.Fprintf(w, "\n== %s ==\n", title)
	width := 0
	for _, r := range rows {
		width = max(width, len([]rune(r.check)))
	}
	all := true
	for _, r := range rows {
		mark := "    "
		if r.ok != nil {
			if *r.ok {
				mark = "ok  "
			} else {
				mark = "FAIL"
				all = false
			}
		}
		fmt.Fprintf(w, "%s  %-*s  %s\n", mark, width, r.check, r.value)
	}
	return all
}

func (e exactness) rows() []row {
	rs := []row{
		{"acknowledged (unique wamids)", fmt.Sprint(e.acked), nil},
		{"stored inbound (unique wamids)", fmt.Sprint(e.stored), nil},
		{"acknowledged but not stored", fmt.Sprint(e.ackedMissing), yes(e.ackedMissing == 0)},
		{"stored more than once", fmt.Sprint(e.storedDup), yes(e.storedDup == 0)},
		{"stored, not acknowledged to the load (answer lost, or the Graph simulator's own)", fmt.Sprint(e.storedNotAcked), nil},
		{"CRM messages (imconnector.send.messages)", fmt.Sprint(e.crm), nil},
		{"stored but not in CRM", fmt.Sprint(e.crmMissing), yes(e.crmMissing == 0)},
		{"in CRM more than once", fmt.Sprint(e.crmDup), yes(e.crmDup == 0)},
		{"in CRM, not stored", fmt.Sprint(e.crmUnknown), yes(e.crmUnknown == 0)},
	}
	if s := append(e.dupSample, e.missSample...); len(s) > 0 {
		rs = append(rs, row{"samples", strings.Join(s, "; "), nil})
	}
	return rs
}

func statusLine(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// peakCallsPerSecond is the most REST requests (a batch counts once, as in
// the portal's bucket) the portal received within any one second.
func (c *cluster) peakCallsPerSecond() int {
	var ts []time.Time
	for _, call := range c.b24.Calls("") {
		if !call.InBatch {
			ts = append(ts, call.Time)
		}
	}
	sort.Slice(ts, func(a, b int) bool { return ts[a].Before(ts[b]) })
	peak, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= time.Second {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
}

// callsByMethod counts the portal's REST calls per method (batch commands
// included), with failures apart.
func (c *cluster) callsByMethod() map[string]int {
	out := map[string]int{}
	for _, call := range c.b24.Calls("") {
		k := call.Method
		if call.InBatch {
			k += " (in batch)"
		}
		if !call.OK() {
			k += " " + call.ErrorCode
		}
		out[k]++
	}
	return out
}

// crmOrder compares, customer by customer, the order the CRM received
// their messages in with the order the gateway stored them in (message
// ids, which grow with time): it returns how many customers have
// messages in both, how many of them got some out of order, and a sample.
func (c *cluster) crmOrder(ctx context.Context) (customers, disordered int, sample string, err error) {
	rows, err := c.db.QueryContext(ctx, `SELECT contact_id, external_id FROM messages
		WHERE channel_id = $1 AND direction = 'in' ORDER BY id`, c.channel)
	if err != nil {
		return 0, 0, "", fmt.Errorf("stored order: %w", err)
	}
	defer rows.Close()
	stored := map[string][]string{} // contact → external ids, stored order
	for rows.Next() {
		var contact, ext string
		if err := rows.Scan(&contact, &ext); err != nil {
			return 0, 0, "", err
		}
		stored[contact] = append(stored[contact], ext)
	}
	if err := rows.Err(); err != nil {
		return 0, 0, "", err
	}
	got := map[string][]string{} // external chat id (our contact) → first arrivals
	seen := map[string]bool{}
	for _, l := range c.portal.Lines() {
		for _, m := range l.Messages() {
			if m.Direction != b24sim.Inbound || seen[m.ExternalID] {
				continue
			}
			seen[m.ExternalID] = true
			got[m.ChatID] = append(got[m.ChatID], m.ExternalID)
		}
	}
	for contact, all := range stored {
		have, ok := got[contact]
		if !ok {
			continue
		}
		customers++
		// Only the order counts here (what is missing is counted
		// elsewhere): the stored messages the CRM has, in stored order.
		in := make(map[string]bool, len(have))
		for _, id := range have {
			in[id] = true
		}
		want := slices.DeleteFunc(slices.Clone(all), func(id string) bool { return !in[id] })
		if !slices.Equal(have, want) {
			disordered++
			if sample == "" {
				i := 0
				for i < len(have) && i < len(want) && have[i] == want[i] {
					i++
				}
				sample = fmt.Sprintf("customer %s: message %d of %d differs", contact, i+1, len(want))
			}
		}
	}
	return customers, disordered, sample, nil
}
