package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Meta's payloads are documented with string ids and string timestamps, but
// numbers turn up in the wild (and in client type definitions) for the same
// fields. These types accept both so one odd field does not lose a message.

// FlexString decodes a JSON string or number into a string, keeping the
// digits of a number exactly. null leaves it empty.
type FlexString string

func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		return nil
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = FlexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("graph: want a string or number, got %.20s", b)
	}
	*s = FlexString(n.String())
	return nil
}

// FlexInt decodes a JSON integer, an integral float, or a string holding
// one. null and "" leave it zero.
type FlexInt int64

func (n *FlexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	raw := string(b)
	if b[0] == '"' {
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		raw = strings.TrimSpace(raw)
		if raw == "" {
			return nil
		}
	}
	if v, err := strconv.ParseInt(raw, 10, 64); err == nil {
		*n = FlexInt(v)
		return nil
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(f) || f != math.Trunc(f) || math.Abs(f) > math.MaxInt64/2 {
		return fmt.Errorf("graph: want an integer, got %.20q", raw)
	}
	*n = FlexInt(f)
	return nil
}

// FlexBool decodes true/false, "true"/"false" or 1/0.
type FlexBool bool

func (v *FlexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "1":
		*v = true
	case "false", "0", "", "null":
		*v = false
	default:
		return fmt.Errorf("graph: want a boolean, got %.20s", b)
	}
	return nil
}

// DecodeAny decodes raw JSON into plain Go values for Inbound.Extra. Numbers
// stay json.Number so long ids keep their digits; nil on bad input.
func DecodeAny(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}

// Fields splits a JSON object into its members; nil if it is not one.
// Parsers use it to read what they can of a payload that does not fit the
// expected shape.
func Fields(raw json.RawMessage) map[string]json.RawMessage {
	var f map[string]json.RawMessage
	if json.Unmarshal(raw, &f) != nil {
		return nil
	}
	return f
}

// Field decodes one member, giving the zero value if absent or malformed.
func Field[T any](f map[string]json.RawMessage, key string) T {
	var v T
	if raw, ok := f[key]; ok {
		if json.Unmarshal(raw, &v) != nil {
			var zero T
			return zero
		}
	}
	return v
}
