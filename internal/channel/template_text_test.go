package channel

import "testing"

func TestTemplateBody(t *testing.T) {
	body := TemplateBody([]byte(`[{"type":"HEADER","format":"TEXT","text":"Hi"},{"type":"BODY","text":"Order {{1}} is on its way"}]`))
	if body != "Order {{1}} is on its way" {
		t.Fatalf("body %q", body)
	}
	if TemplateBody([]byte(`not json`)) != "" {
		t.Fatal("unreadable components gave a body")
	}
}

// A sent template reads as its body with the parameters in place: by
// number, named variables in their order, a missing one left as written.
func TestFillTemplate(t *testing.T) {
	for _, c := range []struct {
		body   string
		params []string
		want   string
	}{
		{"Здравствуйте, {{1}}! Заказ {{2}} передан в доставку.", []string{"Ерлан", "A-4513"}, "Здравствуйте, Ерлан! Заказ A-4513 передан в доставку."},
		{"{{2}} before {{1}}, {{1}} again", []string{"a", "b"}, "b before a, a again"},
		{"Hi {{ name }}, order {{order}}; {{name}}", []string{"Ann", "7"}, "Hi Ann, order 7; Ann"},
		{"Only {{1}} and {{3}}", []string{"x"}, "Only x and {{3}}"},
		{"No variables", nil, "No variables"},
	} {
		if got := FillTemplate(c.body, c.params); got != c.want {
			t.Errorf("FillTemplate(%q, %q) = %q, want %q", c.body, c.params, got, c.want)
		}
	}
}
