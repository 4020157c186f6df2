package b24sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// phpArray models the PHP array Bitrix24 builds from request parameters: an
// ordered map whose keys are strings or decimal integers. Order matters
// (batch commands run in the order given, and a JSON object or form body is
// iterated in order), and a PHP array with keys 0..n-1 serialises as a JSON
// list while anything else, including an empty array, behaves per PHP rules.
type phpArray struct {
	keys []string
	vals map[string]any
}

func newPHPArray() *phpArray { return &phpArray{vals: make(map[string]any)} }

func (a *phpArray) Len() int {
	if a == nil {
		return 0
	}
	return len(a.keys)
}

func (a *phpArray) Keys() []string {
	if a == nil {
		return nil
	}
	return a.keys
}

func (a *phpArray) Get(k string) (any, bool) {
	if a == nil {
		return nil, false
	}
	v, ok := a.vals[k]
	return v, ok
}

// Set stores v under k; an existing key keeps its position, as in PHP.
func (a *phpArray) Set(k string, v any) {
	if _, ok := a.vals[k]; !ok {
		a.keys = append(a.keys, k)
	}
	a.vals[k] = v
}

func (a *phpArray) Delete(k string) {
	if _, ok := a.vals[k]; !ok {
		return
	}
	delete(a.vals, k)
	a.keys = slices.DeleteFunc(a.keys, func(s string) bool { return s == k })
}

// Append adds v under the next integer key (PHP's $a[] = v).
func (a *phpArray) Append(v any) {
	next := 0
	for _, k := range a.keys {
		if n, err := strconv.Atoi(k); err == nil && n >= next {
			next = n + 1
		}
	}
	a.Set(strconv.Itoa(next), v)
}

// Values returns the values in order.
func (a *phpArray) Values() []any {
	if a == nil {
		return nil
	}
	out := make([]any, 0, len(a.keys))
	for _, k := range a.keys {
		out = append(out, a.vals[k])
	}
	return out
}

// isList reports whether keys are exactly "0".."n-1" in order, which is when
// PHP's json_encode emits a JSON array.
func (a *phpArray) isList() bool {
	for i, k := range a.keys {
		if k != strconv.Itoa(i) {
			return false
		}
	}
	return true
}

// lookupCI finds a key case-insensitively, preferring an exact match.
// Most Bitrix24 methods upper-case their top-level parameter names before
// reading them, so callers may send "connector" or "CONNECTOR".
func (a *phpArray) lookupCI(name string) (any, bool) {
	if a == nil {
		return nil, false
	}
	if v, ok := a.vals[name]; ok {
		return v, true
	}
	for _, k := range a.keys {
		if strings.EqualFold(k, name) {
			return a.vals[k], true
		}
	}
	return nil, false
}

// MarshalJSON follows PHP's json_encode: list-shaped arrays (including the
// empty one) become JSON arrays, everything else an object in key order.
func (a *phpArray) MarshalJSON() ([]byte, error) {
	if a == nil || len(a.keys) == 0 {
		return []byte("[]"), nil
	}
	var b bytes.Buffer
	if a.isList() {
		b.WriteByte('[')
		for i, k := range a.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSONValue(&b, a.vals[k]); err != nil {
				return nil, err
			}
		}
		b.WriteByte(']')
		return b.Bytes(), nil
	}
	b.WriteByte('{')
	for i, k := range a.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := marshalJSON(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		if err := writeJSONValue(&b, a.vals[k]); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSONValue(b *bytes.Buffer, v any) error {
	raw, err := marshalJSON(v)
	if err != nil {
		return err
	}
	b.Write(raw)
	return nil
}

// marshalJSON is json.Marshal without HTML escaping: Bitrix24 answers with
// literal '<', '>' and '&' in BB-code and URLs, and so do we.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// plain converts decoded parameters into ordinary Go values for the public
// inspection API: list-shaped arrays become []any, others map[string]any.
// Leaves stay as decoded: string from forms, json.Number, bool or nil from
// JSON bodies.
func plain(v any) any {
	a, ok := v.(*phpArray)
	if !ok {
		return v
	}
	if a.Len() > 0 && a.isList() {
		out := make([]any, 0, a.Len())
		for _, x := range a.Values() {
			out = append(out, plain(x))
		}
		return out
	}
	out := make(map[string]any, a.Len())
	for _, k := range a.keys {
		out[k] = plain(a.vals[k])
	}
	return out
}

// decodeJSONParams reads a JSON request body into a phpArray, keeping key
// order. A top-level value that is not an object yields an error, as PHP's
// json_decode into an array would leave the parameters empty.
func decodeJSONParams(body []byte) (*phpArray, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := decodeJSONValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	a, ok := v.(*phpArray)
	if !ok {
		return nil, fmt.Errorf("JSON body is not an object")
	}
	return a, nil
}

func decodeJSONValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		a := newPHPArray()
		switch t {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %T", kt)
				}
				v, err := decodeJSONValue(dec)
				if err != nil {
					return nil, err
				}
				a.Set(k, v)
			}
		case '[':
			for dec.More() {
				v, err := decodeJSONValue(dec)
				if err != nil {
					return nil, err
				}
				a.Append(v)
			}
		default:
			return nil, fmt.Errorf("unexpected delimiter %v", t)
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return nil, err
		}
		return a, nil
	default:
		return t, nil // string, json.Number, bool or nil
	}
}

// parsePHPQuery decodes an application/x-www-form-urlencoded string the way
// PHP's parse_str does, including bracket keys:
// fields[PHONE][0][VALUE]=x becomes fields → PHONE → 0 → VALUE = "x", and
// a[]=1&a[]=2 appends. Pairs are applied in order into dst.
func parsePHPQuery(raw string, dst *phpArray) {
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		setBracketKey(dst, unescapeLenient(k), unescapeLenient(v))
	}
}

// unescapeLenient decodes like PHP's urldecode: malformed escapes are kept
// verbatim instead of failing the whole request.
func unescapeLenient(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return strings.ReplaceAll(s, "+", " ")
}

// setBracketKey stores value at the path named by a PHP bracket key.
func setBracketKey(dst *phpArray, key string, value any) {
	base, rest, hasBracket := strings.Cut(key, "[")
	if base == "" {
		return // PHP drops keys with an empty base name
	}
	path := []string{base}
	if hasBracket {
		rest = "[" + rest
		for strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				break // unterminated bracket: PHP ignores the remainder
			}
			path = append(path, rest[1:end])
			rest = rest[end+1:]
		}
	}
	cur := dst
	for i, seg := range path {
		last := i == len(path)-1
		if seg == "" && i > 0 {
			if last {
				cur.Append(value)
				return
			}
			child := newPHPArray()
			cur.Append(child)
			cur = child
			continue
		}
		if last {
			cur.Set(seg, value)
			return
		}
		child, ok := cur.vals[seg].(*phpArray)
		if !ok {
			child = newPHPArray()
			cur.Set(seg, child)
		}
		cur = child
	}
}

// mergeInto copies src's top-level keys into dst, overwriting; later
// sources win as POST wins over GET in PHP's $_REQUEST.
func mergeInto(dst, src *phpArray) {
	for _, k := range src.Keys() {
		dst.Set(k, src.vals[k])
	}
}

// formFromValues decodes url.Values (multipart bodies arrive that way) in
// sorted key order, since the original order is lost.
func formFromValues(vals map[string][]string, dst *phpArray) {
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		for _, v := range vals[k] {
			setBracketKey(dst, k, v)
		}
	}
}

// str renders a parameter the way PHP's string conversion would.
func str(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		if t {
			return "1"
		}
		return ""
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case *phpArray:
		return "Array"
	}
	return fmt.Sprint(v)
}

// intval is PHP's intval for the values we meet: leading digits count,
// anything else is 0.
func intval(v any) int {
	s := strings.TrimSpace(str(v))
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return int(f)
	}
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || end == 0 && (s[0] == '-' || s[0] == '+')) {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

// truthy is PHP's boolean conversion: "", "0", 0, false, null and empty
// arrays are false. Bitrix24 also treats "N" as false for Y/N flags, which
// callers handle separately where it applies.
func truthy(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case bool:
		return t
	case *phpArray:
		return t.Len() > 0
	}
	s := str(v)
	if s == "" || s == "0" {
		return false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
		// PHP: only "0" is false among numeric strings, but JSON 0 / 0.0 is.
		_, isNum := v.(json.Number)
		return !isNum
	}
	return true
}

// yesNo reads a Y/N flag that may also arrive as a boolean or 1/0.
func yesNo(v any) bool {
	if s := strings.ToUpper(str(v)); s == "Y" || s == "TRUE" {
		return true
	} else if s == "N" || s == "FALSE" {
		return false
	}
	return truthy(v)
}

func asArray(v any) *phpArray {
	a, _ := v.(*phpArray)
	return a
}

// param reads a top-level parameter case-insensitively.
func param(p *phpArray, name string) any {
	v, _ := p.lookupCI(name)
	return v
}

func paramStr(p *phpArray, name string) string { return str(param(p, name)) }

// child reads a nested key case-sensitively, tolerating a non-array parent.
func child(v any, key string) any {
	a, ok := v.(*phpArray)
	if !ok {
		return nil
	}
	x, _ := a.Get(key)
	return x
}

func childStr(v any, key string) string { return str(child(v, key)) }
