package app_test

import (
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	inputTag   = regexp.MustCompile(`<input\b[^>]*>`)
	selectTag  = regexp.MustCompile(`(?s)<select\b([^>]*)>(.*?)</select>`)
	optionTag  = regexp.MustCompile(`<option\b[^>]*>`)
	attrValues = regexp.MustCompile(`([a-z-]+)(?:="([^"]*)")?`)
)

// attrs reads a tag's attributes (a bare one, like checked, is "").
func attrs(tag string) map[string]string {
	out := map[string]string{}
	tag = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(tag, "<input"), "<option"), "<select")
	for _, m := range attrValues.FindAllStringSubmatch(strings.TrimSuffix(tag, ">"), -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// pageForm reads the form with id from a page as a browser would send it
// untouched: inputs with their values (checkboxes and radios only when
// checked), each select's selected option (else its first). It knows
// the pages' own markup, not all of HTML.
func pageForm(t *testing.T, page, id string) url.Values {
	t.Helper()
	start := strings.Index(page, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no form %s on the page", id)
	}
	start = strings.LastIndex(page[:start], "<form")
	end := strings.Index(page[start:], "</form>")
	body := page[start : start+end]
	v := url.Values{}
	for _, tag := range inputTag.FindAllString(body, -1) {
		a := attrs(tag)
		name, ok := a["name"]
		if !ok {
			continue
		}
		_, checked := a["checked"]
		switch a["type"] {
		case "checkbox", "radio":
			if !checked {
				continue
			}
			if _, has := a["value"]; !has {
				a["value"] = "on"
			}
		}
		v.Add(name, a["value"])
	}
	for _, m := range selectTag.FindAllStringSubmatch(body, -1) {
		a := attrs("<select" + m[1] + ">")
		name, ok := a["name"]
		if !ok {
			continue
		}
		opts := optionTag.FindAllString(m[2], -1)
		if len(opts) == 0 {
			continue
		}
		value := attrs(opts[0])["value"]
		for _, o := range opts {
			if oa := attrs(o); oa["selected"] == "" && strings.Contains(o, " selected") {
				value = oa["value"]
			}
		}
		v.Set(name, value)
	}
	return v
}
