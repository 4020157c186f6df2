package b24sim

import (
	"encoding/json"
	"regexp"
	"strings"
	"time"
)

// batchRefRe matches references to earlier batch results. Bitrix24 builds
// the alternation from the keys of its internal result array (result, next,
// total, time, error), so the documented "$result[cmd][field]" works and so
// do "$next[cmd]", "$total[cmd]", "$time[cmd]" and "$error[cmd]"; the match
// runs to the next whitespace.
var batchRefRe = regexp.MustCompile(`(?i)\$(result|next|total|time|error)(\S*)`)

var batchPathRe = regexp.MustCompile(`\[([^\]]+)\]`)

// mBatch implements "batch" (contract §2.5) after Bitrix24's
// CRestProvider::methodsBatch: commands run in order with the caller's auth;
// each result lands in result/result_total/result_next/result_time under the
// command's key, failures in result_error; with halt the loop stops at the
// first failure. Commands beyond the 50th are not run and each gets
// ERROR_BATCH_LENGTH_EXCEEDED in result_error (that is what the real code
// does; the HTTP call itself still answers 200).
func (s *Server) mBatch(c *call) (any, *page, *apiError) {
	halt := truthy(param(c.params, "halt"))
	var (
		results = newPHPArray()
		errs    = newPHPArray()
		totals  = newPHPArray()
		nexts   = newPHPArray()
		times   = newPHPArray()
	)
	// refs mirrors those arrays as PHP data for $result[...] lookups.
	refs := map[string]*phpArray{
		"result": newPHPArray(), "error": newPHPArray(), "total": newPHPArray(),
		"next": newPHPArray(), "time": newPHPArray(),
	}
	cmds := asArray(param(c.params, "cmd"))
	for i, key := range cmds.Keys() {
		raw, _ := cmds.Get(key)
		var (
			result any
			pg     *page
			err    *apiError
			tm     timing
		)
		if i >= MaxBatch {
			err = errBatchLength()
		} else {
			method, query, _ := strings.Cut(str(raw), "?")
			method, _, _ = strings.Cut(method, "#")
			if q, _, ok := strings.Cut(query, "#"); ok {
				query = q
			}
			sub := newPHPArray()
			parsePHPQuery(query, sub)
			sub = substituteRefs(sub, refs)
			sub.Delete("auth") // the batch's own auth applies
			method = normalizeMethod(method)
			if method == "download" || method == "upload" {
				err = errBatchMethodNotAllowed()
			} else {
				wall := time.Now()
				sc := &call{s: s, p: c.p, userID: c.userID, scope: c.scope, method: method, params: sub, now: s.clock(), base: c.base, inBatch: true, events: c.events}
				result, pg, err = s.execLocked(sc)
				tm = s.timingFor(sc.now, time.Since(wall))
			}
		}
		if err != nil {
			e := map[string]string{"error": err.Code, "error_description": err.Desc}
			errs.Set(key, e)
			refs["error"].Set(key, asPHP(e))
			if halt {
				break
			}
			continue
		}
		results.Set(key, result)
		refs["result"].Set(key, asPHP(result))
		times.Set(key, tm)
		refs["time"].Set(key, asPHP(tm))
		if pg != nil && !pg.noTotal {
			totals.Set(key, pg.total)
			refs["total"].Set(key, pg.total)
			if pg.next > 0 {
				nexts.Set(key, pg.next)
				refs["next"].Set(key, pg.next)
			}
		}
	}
	out := newPHPArray()
	out.Set("result", results)
	out.Set("result_error", errs)
	out.Set("result_total", totals)
	out.Set("result_next", nexts)
	out.Set("result_time", times)
	return out, nil, nil
}

// asPHP converts a method result into PHP-like data (phpArray trees with
// json.Number leaves) by a JSON round trip, which is what a later command's
// reference sees in Bitrix24.
func asPHP(v any) any {
	raw, err := marshalJSON(v)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	out, err := decodeJSONValue(dec)
	if err != nil {
		return nil
	}
	return out
}

// substituteRefs replaces $result[...] references in parameter values
// (CRestUtil::processBatchStructure). A value that is exactly one reference
// takes the referenced value as is, arrays included; a reference inside a
// longer string is replaced by its string form. A path that runs into a
// missing key stops there and uses what it reached, as PHP does: an
// unresolvable "$result[find][CONTACT][0]" becomes the whole result of
// "find", never an empty string.
func substituteRefs(params *phpArray, refs map[string]*phpArray) *phpArray {
	out := newPHPArray()
	for _, k := range params.Keys() {
		v, _ := params.Get(k)
		switch t := v.(type) {
		case *phpArray:
			out.Set(k, substituteRefs(t, refs))
		case string:
			out.Set(k, substituteValue(t, refs))
		default:
			out.Set(k, v)
		}
	}
	return out
}

func substituteValue(s string, refs map[string]*phpArray) any {
	matches := batchRefRe.FindAllStringSubmatch(s, -1)
	if matches == nil {
		return s
	}
	var cur any = s
	for _, m := range matches {
		path := batchPathRe.FindAllStringSubmatch(m[2], -1)
		if path == nil {
			continue
		}
		var r any = refs[strings.ToLower(m[1])]
		for _, seg := range path {
			a, ok := r.(*phpArray)
			if !ok {
				break
			}
			next, ok := a.Get(seg[1])
			if !ok || next == nil {
				break
			}
			r = next
		}
		if cs, ok := cur.(string); ok {
			if m[0] == cs {
				cur = r
			} else {
				cur = strings.ReplaceAll(cs, m[0], str(r))
			}
		}
	}
	return cur
}
