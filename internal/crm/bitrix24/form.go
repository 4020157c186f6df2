package bitrix24

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// EncodeForm encodes params the way PHP's http_build_query does, which is
// what Bitrix24 parses batch commands and form bodies with: nesting becomes
// bracket keys (fields[PHONE][0][VALUE]=…), true/false become 1/0, nil and
// empty maps or slices are left out. Map keys come out in a fixed order
// (numeric keys by value, before the others, which sort as strings), so
// the same params always give the same string.
//
// Brackets in keys are left unescaped and values are escaped once, except
// for batch references ($result[cmd][KEY][0] and its result_* siblings),
// which Bitrix24 substitutes only if they arrive verbatim. Anything else
// that is not a map, slice or scalar (structs, pointers) is encoded through
// its JSON form.
func EncodeForm(params map[string]any) string {
	var b strings.Builder
	for _, k := range sortedKeys(params) {
		encodeFormValue(&b, url.QueryEscape(k), params[k])
	}
	return b.String()
}

func encodeFormValue(b *strings.Builder, key string, v any) {
	switch x := v.(type) {
	case nil:
		return
	case string:
		writePair(b, key, escapeFormValue(x))
		return
	case bool:
		if x {
			writePair(b, key, "1")
		} else {
			writePair(b, key, "0")
		}
		return
	case json.Number:
		writePair(b, key, url.QueryEscape(x.String()))
		return
	case float64:
		writePair(b, key, strconv.FormatFloat(x, 'f', -1, 64))
		return
	case float32:
		writePair(b, key, strconv.FormatFloat(float64(x), 'f', -1, 32))
		return
	case map[string]any:
		for _, k := range sortedKeys(x) {
			encodeFormValue(b, key+"["+url.QueryEscape(k)+"]", x[k])
		}
		return
	case []any:
		for i, e := range x {
			encodeFormValue(b, key+"["+strconv.Itoa(i)+"]", e)
		}
		return
	}

	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		writePair(b, key, strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		writePair(b, key, strconv.FormatUint(rv.Uint(), 10))
	case reflect.String:
		writePair(b, key, escapeFormValue(rv.String()))
	case reflect.Bool:
		encodeFormValue(b, key, rv.Bool())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			writePair(b, key, escapeFormValue(string(rv.Bytes())))
			return
		}
		for i := range rv.Len() {
			encodeFormValue(b, key+"["+strconv.Itoa(i)+"]", rv.Index(i).Interface())
		}
	case reflect.Map:
		keys := make(map[string]reflect.Value, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			keys[fmt.Sprint(it.Key().Interface())] = it.Value()
		}
		for _, k := range sortedKeys(keys) {
			encodeFormValue(b, key+"["+url.QueryEscape(k)+"]", keys[k].Interface())
		}
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return
		}
		encodeFormValue(b, key, rv.Elem().Interface())
	default:
		// Structs and the like: go through their JSON shape so json tags
		// name the keys, as they would in a JSON call.
		data, err := json.Marshal(v)
		if err != nil {
			return
		}
		var generic any
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.UseNumber()
		if dec.Decode(&generic) == nil {
			encodeFormValue(b, key, generic)
		}
	}
}

func writePair(b *strings.Builder, key, escapedValue string) {
	if b.Len() > 0 {
		b.WriteByte('&')
	}
	b.WriteString(key)
	b.WriteByte('=')
	b.WriteString(escapedValue)
}

// batchRefRE matches a batch result reference; the first group is the
// referenced command's name.
var batchRefRE = regexp.MustCompile(`\$(?:result|result_error|result_total|result_next|result_time)\[([A-Za-z0-9_.:\-]*)\](?:\[[A-Za-z0-9_.:\-]*\])*`)

// escapeFormValue query-escapes s but keeps batch references verbatim.
func escapeFormValue(s string) string {
	locs := batchRefRE.FindAllStringIndex(s, -1)
	if locs == nil {
		return url.QueryEscape(s)
	}
	var b strings.Builder
	last := 0
	for _, l := range locs {
		b.WriteString(url.QueryEscape(s[last:l[0]]))
		b.WriteString(s[l[0]:l[1]])
		last = l[1]
	}
	b.WriteString(url.QueryEscape(s[last:]))
	return b.String()
}

// sortedKeys orders numeric keys by value first, then the rest as strings,
// so list-like maps keep their order and the result is deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ai, aerr := strconv.ParseUint(a, 10, 64)
		bi, berr := strconv.ParseUint(b, 10, 64)
		switch {
		case aerr == nil && berr == nil && ai != bi:
			if ai < bi {
				return -1
			}
			return 1
		case aerr == nil && berr != nil:
			return -1
		case aerr != nil && berr == nil:
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}

// Caps on the shape of a form from outside. Bitrix24's deepest body (an
// operator's message event) nests 6 levels and a robot's run a few dozen
// keys; a body past these is an attack on the decoder (one key nested
// 340,000 levels took 280 MiB and a second of CPU), refused before it is
// decoded.
const (
	// maxFormDepth is the most bracket levels one key may have.
	maxFormDepth = 16
	// maxFormNodes bounds the tree a form decodes to: the sum, over every
	// value, of its key's segments.
	maxFormNodes = 20000
)

// errFormTooDeep and errFormTooLarge say which cap a form broke.
var (
	errFormTooDeep  = errors.New("a form key is nested too deep")
	errFormTooLarge = errors.New("the form has too many fields")
)

// checkFormShape enforces maxFormDepth and maxFormNodes on parsed values.
// It allocates nothing and reads each key once, so a hostile body costs
// what parsing it cost.
func checkFormShape(values url.Values) error {
	nodes := 0
	for k, vs := range values {
		depth := strings.Count(k, "[")
		if depth > maxFormDepth {
			return errFormTooDeep
		}
		nodes += (depth + 1) * max(len(vs), 1)
		if nodes > maxFormNodes {
			return errFormTooLarge
		}
	}
	return nil
}

// checkRawForm applies the same caps as checkFormShape to an undecoded
// form body, bracket by bracket ("[" or "%5B"), so a hostile body is
// refused after one pass of byte searches, without unescaping it.
func checkRawForm(body []byte) error {
	nodes := 0
	for len(body) > 0 {
		var pair []byte
		pair, body, _ = bytes.Cut(body, []byte("&"))
		key, _, _ := bytes.Cut(pair, []byte("="))
		depth := bytes.Count(key, []byte("["))
		if bytes.IndexByte(key, '%') >= 0 {
			depth += bytes.Count(key, []byte("%5B")) + bytes.Count(key, []byte("%5b"))
		}
		if depth > maxFormDepth {
			return errFormTooDeep
		}
		if nodes += depth + 1; nodes > maxFormNodes {
			return errFormTooLarge
		}
	}
	return nil
}

// DecodeForm rebuilds the nesting of a PHP-style form (event bodies,
// iframe POSTs) from its bracket keys: data[MESSAGES][0][im][chat_id]=1807
// becomes {"data":{"MESSAGES":[{"im":{"chat_id":"1807"}}]}}. Values stay
// strings; a level whose keys are exactly 0..n-1 becomes a []any, any other
// level a map[string]any; "[]" appends as in PHP. A key repeated without
// "[]" keeps its last value, and a later, deeper key replaces a scalar.
//
// Keys nested deeper than maxFormDepth are left out, so even a form that
// did not pass checkFormShape cannot make the tree deep; readForm refuses
// such forms before anyone decodes them.
func DecodeForm(values url.Values) map[string]any {
	root := &formNode{}
	for _, k := range sortedKeys(values) {
		if strings.Count(k, "[") > maxFormDepth {
			continue
		}
		path := splitFormKey(k)
		for _, v := range values[k] {
			root.set(path, v)
		}
	}
	// The top level is always a map, even for keys 0..n-1.
	out := make(map[string]any, len(root.kids))
	for k, kid := range root.kids {
		out[k] = kid.value()
	}
	return out
}

type formNode struct {
	leaf     bool
	val      string
	kids     map[string]*formNode
	nextAuto int // PHP's next index for "[]": one past the largest integer key
}

func (n *formNode) set(path []string, v string) {
	if len(path) == 0 {
		n.leaf, n.val, n.kids, n.nextAuto = true, v, nil, 0
		return
	}
	if n.leaf || n.kids == nil {
		n.leaf, n.val, n.kids, n.nextAuto = false, "", make(map[string]*formNode), 0
	}
	seg := path[0]
	if seg == "" {
		seg = strconv.Itoa(n.nextAuto)
	}
	if i, err := strconv.Atoi(seg); err == nil && i >= n.nextAuto && strconv.Itoa(i) == seg {
		n.nextAuto = i + 1
	}
	kid, ok := n.kids[seg]
	if !ok {
		kid = &formNode{}
		n.kids[seg] = kid
	}
	kid.set(path[1:], v)
}

func (n *formNode) value() any {
	if n.leaf {
		return n.val
	}
	dense := len(n.kids) > 0
	for i := range len(n.kids) {
		if _, ok := n.kids[strconv.Itoa(i)]; !ok {
			dense = false
			break
		}
	}
	if dense {
		arr := make([]any, len(n.kids))
		for i := range arr {
			arr[i] = n.kids[strconv.Itoa(i)].value()
		}
		return arr
	}
	m := make(map[string]any, len(n.kids))
	for k, kid := range n.kids {
		m[k] = kid.value()
	}
	return m
}

// splitFormKey splits "a[b][0][]" into ["a","b","0",""]. Like PHP, it stops
// at the first character after a closing bracket that does not open a new
// one, and takes a key whose first bracket never closes as a plain name.
func splitFormKey(key string) []string {
	open := strings.IndexByte(key, '[')
	if open <= 0 || !strings.Contains(key[open:], "]") {
		return []string{key}
	}
	parts := []string{key[:open]}
	rest := key[open:]
	for len(rest) > 0 && rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			break
		}
		parts = append(parts, rest[1:end])
		rest = rest[end+1:]
	}
	return parts
}
