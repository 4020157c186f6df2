package bitrix24

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// MaxBatchCommands is Bitrix24's limit of commands in one batch call.
const MaxBatchCommands = 50

// BatchCommand is one command of a batch. Params may reference results of
// earlier commands with strings such as "$result[find][CONTACT][0]"; they
// are passed through verbatim (see EncodeForm).
type BatchCommand struct {
	Name   string
	Method string
	Params map[string]any
}

// BatchResult merges the answers of one or more batch calls, keyed by
// command name. A command that failed is in Errors; with halt, commands
// after the first failure are in neither map.
type BatchResult struct {
	Results map[string]json.RawMessage
	Errors  map[string]*APIError
	Totals  map[string]int
	Next    map[string]int
}

// Decode unmarshals the result of the named command into out, or returns
// its error.
func (r *BatchResult) Decode(name string, out any) error {
	if ae, ok := r.Errors[name]; ok {
		return fmt.Errorf("bitrix24: batch command %s: %w", name, ae)
	}
	raw, ok := r.Results[name]
	if !ok {
		return fmt.Errorf("bitrix24: batch command %s: no result", name)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("bitrix24: batch command %s: decode: %w", name, err)
	}
	return nil
}

var batchNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:\-]+$`)

// Batch runs cmds with the batch method, 50 per call (a batch counts as a
// single request against the portal's rate limit). Sub-command failures
// are reported in BatchResult.Errors, not as the returned error. With halt
// each call stops at its first failing command and no further calls are
// made.
//
// A command may only reference commands that come before it in the same
// call; Batch refuses lists where a reference would cross a 50-command
// boundary, since Bitrix24 cannot resolve it.
func (c *Client) Batch(ctx context.Context, integrationID string, cmds []BatchCommand, halt bool) (*BatchResult, error) {
	encoded, err := encodeBatch(cmds)
	if err != nil {
		return nil, err
	}
	res := &BatchResult{
		Results: make(map[string]json.RawMessage),
		Errors:  make(map[string]*APIError),
		Totals:  make(map[string]int),
		Next:    make(map[string]int),
	}
	methods := make(map[string]string, len(cmds))
	for _, cmd := range cmds {
		methods[cmd.Name] = cmd.Method
	}
	haltFlag := 0
	if halt {
		haltFlag = 1
	}
	for start := 0; start < len(cmds); start += MaxBatchCommands {
		end := min(start+MaxBatchCommands, len(cmds))
		cmd := make(orderedCommands, 0, end-start)
		for i := start; i < end; i++ {
			cmd = append(cmd, [2]string{cmds[i].Name, encoded[i]})
		}
		resp, err := c.CallResult(ctx, integrationID, "batch", map[string]any{"halt": haltFlag, "cmd": cmd})
		if err != nil {
			return res, err
		}
		failed, err := res.merge(resp.Result, methods)
		if err != nil {
			return res, fmt.Errorf("bitrix24: batch: %w", err)
		}
		if halt && failed {
			break
		}
	}
	return res, nil
}

// encodeBatch checks the commands and encodes each as "method?query".
func encodeBatch(cmds []BatchCommand) ([]string, error) {
	pos := make(map[string]int, len(cmds))
	for i, cmd := range cmds {
		if !batchNameRE.MatchString(cmd.Name) {
			return nil, fmt.Errorf("bitrix24: batch: invalid command name %q", cmd.Name)
		}
		if _, dup := pos[cmd.Name]; dup {
			return nil, fmt.Errorf("bitrix24: batch: duplicate command name %q", cmd.Name)
		}
		if !validMethod(cmd.Method) || cmd.Method == "batch" {
			return nil, fmt.Errorf("bitrix24: batch: invalid method %q for command %s", cmd.Method, cmd.Name)
		}
		pos[cmd.Name] = i
	}
	out := make([]string, len(cmds))
	for i, cmd := range cmds {
		s := cmd.Method
		if q := EncodeForm(cmd.Params); q != "" {
			s += "?" + q
		}
		for _, m := range batchRefRE.FindAllStringSubmatch(s, -1) {
			j, known := pos[m[1]]
			if !known {
				continue // not ours to judge; Bitrix24 substitutes nothing
			}
			if j >= i || j/MaxBatchCommands != i/MaxBatchCommands {
				return nil, fmt.Errorf("bitrix24: batch: command %s references %s, which does not run before it in the same batch call", cmd.Name, m[1])
			}
		}
		out[i] = s
	}
	return out, nil
}

// merge adds one batch answer and reports whether any command failed.
// methods maps command names to methods, to spot imconnector.register's
// failure-as-result inside a batch too.
func (r *BatchResult) merge(result json.RawMessage, methods map[string]string) (bool, error) {
	var env struct {
		Result      json.RawMessage `json:"result"`
		ResultError json.RawMessage `json:"result_error"`
		ResultTotal json.RawMessage `json:"result_total"`
		ResultNext  json.RawMessage `json:"result_next"`
	}
	if err := json.Unmarshal(result, &env); err != nil {
		return false, fmt.Errorf("decode result: %w", err)
	}
	results, err := namedRaw(env.Result)
	if err != nil {
		return false, fmt.Errorf("result: %w", err)
	}
	errs, err := namedRaw(env.ResultError)
	if err != nil {
		return false, fmt.Errorf("result_error: %w", err)
	}
	totals, err := namedRaw(env.ResultTotal)
	if err != nil {
		return false, fmt.Errorf("result_total: %w", err)
	}
	next, err := namedRaw(env.ResultNext)
	if err != nil {
		return false, fmt.Errorf("result_next: %w", err)
	}
	failed := len(errs) > 0
	for k, v := range results {
		if ae := nestedResultError(methods[k], v); ae != nil {
			r.Errors[k] = ae
			failed = true
			continue
		}
		r.Results[k] = v
	}
	for k, v := range errs {
		var eb errorBody
		if json.Unmarshal(v, &eb) != nil {
			r.Errors[k] = &APIError{Description: string(v)}
			continue
		}
		r.Errors[k] = &APIError{Code: rawString(eb.Error), Description: rawString(eb.ErrorDescription)}
	}
	for k, v := range totals {
		r.Totals[k] = flexInt(v)
	}
	for k, v := range next {
		r.Next[k] = flexInt(v)
	}
	return failed, nil
}

// namedRaw reads one of the batch maps. PHP sends an empty map as [] and a
// map with keys 0..n-1 as a list, so lists are keyed by index.
func namedRaw(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err == nil {
		return m, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("neither an object nor a list")
	}
	m = make(map[string]json.RawMessage, len(list))
	for i, v := range list {
		m[strconv.Itoa(i)] = v
	}
	return m, nil
}

// orderedCommands is the batch "cmd" object with its keys in the order
// given: Bitrix24 runs the commands in that order, and a Go map would
// sort them by name, running a command before the one it references.
type orderedCommands [][2]string

func (o orderedCommands) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(kv[0])
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(kv[1])
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
