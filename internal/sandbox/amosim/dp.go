package amosim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The widget's digital pipeline action (Kommo's "Widgets in Digital
// Pipeline"): an admin adds the widget's action to a stage and fills in
// the settings the manifest's dp.settings declare; when a lead enters the
// stage amoCRM posts the run to the manifest's dp.webhook_url, form-encoded
// with PHP-style keys like its other webhooks, with no signature:
//
//	event[type]=14&event[type_code]=lead_status_changed&event[data][id]=…
//	&event[data][element_type]=2&event[data][status_id]=…&event[data][pipeline_id]=…
//	&event[data][direction_of_movement]=went_to_trigger&event[time]=…
//	&action[settings][widget][settings][<name>]=…&subdomain=…&account_id=…
//
// A run the receiver does not answer with 2xx is delivered again (the
// newer docs allow up to 4 retries within an hour); Redeliver posts a run
// again as such a retry does.

// DPDelivery is one digital pipeline run posted.
type DPDelivery struct {
	URL    string
	Body   []byte
	Status int
	Err    string
}

// dpAction is a widget action saved on a stage.
type dpAction struct {
	pipeline, status int
	settings         map[string]string
}

// SetDPAction saves the widget's action on a stage as an admin does in the
// digital pipeline editor. amoCRM keeps only the settings the manifest
// declares (Options.DPSettings, when set), requires the required ones,
// and refuses to save an action on
// a stage the pipeline does not have, or a closed one (142/143 run no
// widget actions).
func (s *Server) SetDPAction(accountID, pipelineID, statusID int, settings map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[accountID]
	if a == nil {
		return fmt.Errorf("amosim: no account %d", accountID)
	}
	p := a.pipeline(pipelineID)
	if p == nil || !p.hasStatus(statusID) || statusID == StatusWon || statusID == StatusLost {
		return fmt.Errorf("amosim: account %d has no open stage %d in pipeline %d", accountID, statusID, pipelineID)
	}
	kept := map[string]string{}
	for k, v := range settings {
		if _, declared := s.opts.DPSettings[k]; len(s.opts.DPSettings) > 0 && !declared {
			return fmt.Errorf("amosim: the manifest declares no dp setting %q", k)
		}
		kept[k] = v
	}
	for k, required := range s.opts.DPSettings {
		if required && strings.TrimSpace(kept[k]) == "" {
			return fmt.Errorf("amosim: the dp setting %q is required", k)
		}
	}
	a.dp = slices.DeleteFunc(a.dp, func(d dpAction) bool { return d.pipeline == pipelineID && d.status == statusID })
	a.dp = append(a.dp, dpAction{pipeline: pipelineID, status: statusID, settings: kept})
	return nil
}

// MoveLead moves a lead into a stage as a user does in the pipeline view
// (SetLeadStatus) and, when the widget's action is saved on that stage,
// posts the run to Options.DPWebhookURL and returns it (nil without an
// action). An unknown lead, or a stage of another pipeline, is refused.
func (s *Server) MoveLead(ctx context.Context, accountID, leadID, statusID int) (*DPDelivery, error) {
	s.mu.Lock()
	a := s.accounts[accountID]
	if a == nil || a.leads[leadID] == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("amosim: no lead %d in account %d", leadID, accountID)
	}
	l := a.leads[leadID]
	if p := a.pipeline(l.PipelineID); p == nil || !p.hasStatus(statusID) {
		s.mu.Unlock()
		return nil, fmt.Errorf("amosim: pipeline %d has no stage %d", l.PipelineID, statusID)
	}
	var act *dpAction
	for i := range a.dp {
		if a.dp[i].pipeline == l.PipelineID && a.dp[i].status == statusID {
			act = &a.dp[i]
		}
	}
	pipeline, sub := l.PipelineID, a.spec.Subdomain
	var f url.Values
	if act != nil {
		f = url.Values{
			"event[type]": {"14"}, "event[type_code]": {"lead_status_changed"},
			"event[data][id]": {strconv.Itoa(leadID)}, "event[data][element_type]": {"2"},
			"event[data][status_id]": {strconv.Itoa(statusID)}, "event[data][pipeline_id]": {strconv.Itoa(pipeline)},
			"event[data][direction_of_movement]": {"went_to_trigger"}, "event[time]": {strconv.FormatInt(s.clock().Unix(), 10)},
			"subdomain": {sub}, "account_id": {strconv.Itoa(accountID)},
		}
		for k, v := range act.settings {
			f.Set("action[settings][widget][settings]["+k+"]", v)
		}
	}
	s.mu.Unlock()
	s.SetLeadStatus(accountID, leadID, statusID)
	if act == nil {
		return nil, nil
	}
	d := &DPDelivery{URL: s.opts.DPWebhookURL, Body: []byte(f.Encode())}
	s.postDP(ctx, d)
	return d, nil
}

// Redeliver posts a run again, as amoCRM's retry does.
func (s *Server) Redeliver(ctx context.Context, d *DPDelivery) *DPDelivery {
	again := &DPDelivery{URL: d.URL, Body: slices.Clone(d.Body)}
	s.postDP(ctx, again)
	return again
}

// DPDeliveries returns the runs posted, oldest first.
func (s *Server) DPDeliveries() []DPDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dpRuns)
}

func (s *Server) postDP(ctx context.Context, d *DPDelivery) {
	defer func() {
		s.mu.Lock()
		s.dpRuns = appendCapped(s.dpRuns, *d, s.opts.MaxRecorded)
		s.mu.Unlock()
	}()
	if d.URL == "" {
		d.Err = "no dp webhook URL configured"
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		d.Err = err.Error()
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.hc.Do(req)
	if err != nil {
		d.Err = err.Error()
		return
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	d.Status = resp.StatusCode
}
