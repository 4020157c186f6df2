package amosim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// decodeBatch reads a create/update body: a JSON array of objects, at most
// max of them.
func decodeBatch(body []byte, max int) ([]map[string]any, *Problem) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, problem(http.StatusBadRequest, "Bad Request", "Request body must be a JSON array")
	}
	if len(raw) == 0 {
		return nil, problem(http.StatusBadRequest, "Bad Request", "Empty request")
	}
	if len(raw) > max {
		return nil, problem(http.StatusBadRequest, "Bad Request", "Too many entities in one request: at most "+strconv.Itoa(max))
	}
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		m, ok := v.(map[string]any)
		if !ok {
			p := problem(http.StatusBadRequest, "Bad Request", "Request validation failed")
			p.Validation = []ValidationError{{RequestID: strconv.Itoa(i), Errors: []FieldError{{Code: "InvalidType", Path: "", Detail: "This value should be of type object."}}}}
			return nil, p
		}
		out[i] = m
	}
	return out, nil
}

func decodeObject(body []byte) (map[string]any, *Problem) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, problem(http.StatusBadRequest, "Bad Request", "Request body must be a JSON object")
	}
	return m, nil
}

// requestID is the item's request_id, or its index as amoCRM defaults it.
func requestID(m map[string]any, i int) string {
	if s, ok := m["request_id"].(string); ok && s != "" {
		return s
	}
	return strconv.Itoa(i)
}

func writeValidation(w http.ResponseWriter, errs []ValidationError) {
	p := problem(http.StatusBadRequest, "Bad Request", "Request validation failed")
	p.Validation = errs
	writeProblem(w, p)
}

// itemErrs collects the validation errors of one batch item.
type itemErrs struct {
	rid  string
	errs []FieldError
}

func (e *itemErrs) add(code, path, detail string) {
	e.errs = append(e.errs, FieldError{Code: code, Path: path, Detail: detail})
}

func (e *itemErrs) failed() bool { return len(e.errs) > 0 }

func (e *itemErrs) has(path string) bool {
	for _, f := range e.errs {
		if f.Path == path {
			return true
		}
	}
	return false
}

func (e *itemErrs) result() ValidationError { return ValidationError{RequestID: e.rid, Errors: e.errs} }

// int reads an integer field. Absent or null is (0, false); any other type
// than a JSON integer is an InvalidType error: amoCRM types strictly.
func (e *itemErrs) int(m map[string]any, key, prefix string) (int, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return 0, false
	}
	n, isNum := v.(json.Number)
	if isNum {
		if i, err := strconv.Atoi(n.String()); err == nil {
			return i, true
		}
	}
	e.add("InvalidType", prefix+key, "This value should be of type int.")
	return 0, false
}

func (e *itemErrs) str(m map[string]any, key, prefix string) (string, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		e.add("InvalidType", prefix+key, "This value should be of type string.")
		return "", false
	}
	return s, true
}

// tags reads _embedded.tags ([{name}] or [{id}]); nil when absent.
func (e *itemErrs) tags(m map[string]any, prefix string) []string {
	emb, _ := m["_embedded"].(map[string]any)
	if _, ok := emb["tags"]; !ok {
		return nil
	}
	return e.tagList(emb["tags"], prefix+"_embedded.tags")
}

func (e *itemErrs) tagNames(m map[string]any, key string) []string {
	v, ok := m[key]
	if !ok {
		return nil
	}
	return e.tagList(v, key)
}

func (e *itemErrs) tagList(v any, path string) []string {
	list, ok := v.([]any)
	if !ok {
		e.add("InvalidType", path, "This value should be of type array.")
		return nil
	}
	out := []string{}
	for i, x := range list {
		tm, _ := x.(map[string]any)
		name, _ := tm["name"].(string)
		if name == "" {
			if _, hasID := tm["id"]; hasID {
				continue // an existing tag by id; the simulator keeps names only
			}
			e.add("FieldMissing", path+"."+strconv.Itoa(i)+".name", "This field is missing.")
			continue
		}
		out = append(out, name)
	}
	return out
}

// customFields reads custom_fields_values: PHONE and EMAIL by field_code or
// field_id, enums by enum_code or enum_id. At most 40 fields per entity.
func (e *itemErrs) customFields(m map[string]any, prefix string) (phones, emails []Value, other map[int]string) {
	v, ok := m["custom_fields_values"]
	if !ok || v == nil {
		return nil, nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		e.add("InvalidType", prefix+"custom_fields_values", "This value should be of type array.")
		return nil, nil, nil
	}
	if len(list) > 40 {
		e.add("InvalidCount", prefix+"custom_fields_values", "This collection should contain 40 elements or less.")
		return nil, nil, nil
	}
	for i, x := range list {
		p := prefix + "custom_fields_values." + strconv.Itoa(i) + "."
		f, _ := x.(map[string]any)
		if f == nil {
			e.add("InvalidType", strings.TrimSuffix(p, "."), "This value should be of type object.")
			continue
		}
		code, _ := e.str(f, "field_code", p)
		id, hasID := e.int(f, "field_id", p)
		var enums map[string]int
		var dst *[]Value
		switch {
		case code == "PHONE" || (hasID && id == FieldPhone):
			enums, dst = phoneEnums, &phones
		case code == "EMAIL" || (hasID && id == FieldEmail):
			enums, dst = emailEnums, &emails
		case hasID:
			e.add("NotSupportedChoice", p+"field_id", "The value you selected is not a valid choice.")
			continue
		case code != "":
			e.add("NotSupportedChoice", p+"field_code", "The value you selected is not a valid choice.")
			continue
		default:
			e.add("FieldMissing", p+"field_id", "This field is missing.")
			continue
		}
		vals, _ := f["values"].([]any)
		if len(vals) == 0 {
			e.add("FieldMissing", p+"values", "This field is missing.")
			continue
		}
		for j, y := range vals {
			vp := p + "values." + strconv.Itoa(j) + "."
			vm, _ := y.(map[string]any)
			if vm == nil {
				e.add("InvalidType", strings.TrimSuffix(vp, "."), "This value should be of type object.")
				continue
			}
			val, ok := e.str(vm, "value", vp)
			if !ok {
				if !e.has(vp + "value") {
					e.add("FieldMissing", vp+"value", "This field is missing.")
				}
				continue
			}
			enum := "WORK"
			if ec, ok := e.str(vm, "enum_code", vp); ok {
				if _, known := enums[ec]; !known {
					e.add("NotSupportedChoice", vp+"enum_code", "The value you selected is not a valid choice.")
					continue
				}
				enum = ec
			} else if eid, ok := e.int(vm, "enum_id", vp); ok {
				found := false
				for c, id := range enums {
					if id == eid {
						enum, found = c, true
					}
				}
				if !found {
					e.add("NotSupportedChoice", vp+"enum_id", "The value you selected is not a valid choice.")
					continue
				}
			}
			*dst = append(*dst, Value{Value: val, EnumCode: enum})
		}
	}
	return phones, emails, other
}
