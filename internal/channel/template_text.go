package channel

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// templatePlaceholder is a template variable: {{1}}, or a named {{first_name}}.
var templatePlaceholder = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\s*\}\}`)

// CountTemplateVariables counts the distinct placeholders of a template text.
func CountTemplateVariables(text string) int {
	seen := map[string]bool{}
	for _, m := range templatePlaceholder.FindAllStringSubmatch(text, -1) {
		seen[m[1]] = true
	}
	return len(seen)
}

// FillTemplate puts a template's parameters into its body: {{n}} is the
// n-th parameter; named variables take the parameters in the order they
// first appear. A variable without a parameter stays as written.
func FillTemplate(body string, params []string) string {
	named := map[string]int{}
	return templatePlaceholder.ReplaceAllStringFunc(body, func(ph string) string {
		key := templatePlaceholder.FindStringSubmatch(ph)[1]
		n, err := strconv.Atoi(key)
		if err != nil {
			if _, ok := named[key]; !ok {
				named[key] = len(named) + 1
			}
			n = named[key]
		}
		if n < 1 || n > len(params) {
			return ph
		}
		return params[n-1]
	})
}

// TemplateBody is the text of a template's body in the messenger's
// components JSON ("" when it has none or cannot be read).
func TemplateBody(components json.RawMessage) string {
	var comps []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if json.Unmarshal(components, &comps) != nil {
		return ""
	}
	for _, c := range comps {
		if strings.EqualFold(c.Type, "BODY") {
			return c.Text
		}
	}
	return ""
}
