package bitrix24

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

func TestDecodeFormFixtures(t *testing.T) {
	for _, name := range []string{"install-event", "imconnector-message-add-event"} {
		t.Run(name, func(t *testing.T) {
			v, err := url.ParseQuery(strings.TrimSpace(string(fixture(t, name+".txt"))))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal(fixture(t, name+".json"), &want); err != nil {
				t.Fatal(err)
			}
			if got := DecodeForm(v); !reflect.DeepEqual(got, want) {
				gj, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("got %s", gj)
			}
		})
	}
}

func TestDecodeFormOtherEvents(t *testing.T) {
	parse := func(name string) map[string]any {
		v, err := url.ParseQuery(strings.TrimSpace(string(fixture(t, name))))
		if err != nil {
			t.Fatal(err)
		}
		return DecodeForm(v)
	}
	upd := parse("imconnector-message-update-event.txt")
	msg := upd["data"].(map[string]any)["MESSAGES"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if !reflect.DeepEqual(msg["id"], []any{"wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}) {
		t.Errorf("update message id = %#v", msg["id"])
	}
	if del := parse("imconnector-line-delete-event.txt"); del["data"] != "3" {
		t.Errorf("line delete data = %#v", del["data"])
	}
}

func TestDecodeForm(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // JSON
	}{
		{"flat", "a=1&b=x+y", `{"a":"1","b":"x y"}`},
		{"dense list", "l[1]=b&l[0]=a&l[2]=c", `{"l":["a","b","c"]}`},
		{"sparse is a map", "l[1]=b&l[3]=d", `{"l":{"1":"b","3":"d"}}`},
		{"not from zero", "l[1]=b", `{"l":{"1":"b"}}`},
		{"mixed keys", "l[0]=a&l[x]=b", `{"l":{"0":"a","x":"b"}}`},
		{"append", "id[]=a&id[]=b", `{"id":["a","b"]}`},
		{"append after index", "id[5]=a&id[]=b", `{"id":{"5":"a","6":"b"}}`},
		{"deep", "data[MESSAGES][0][im][chat_id]=1807", `{"data":{"MESSAGES":[{"im":{"chat_id":"1807"}}]}}`},
		{"last value wins", "a=1&a=2", `{"a":"2"}`},
		{"deeper replaces scalar", "a=1&a[b]=2", `{"a":{"b":"2"}}`},
		{"unclosed bracket", "a[b=1", `{"a[b":"1"}`},
		{"trailing junk ignored", "a[b]x[c]=1", `{"a":{"b":"1"}}`},
		{"encoded brackets", "auth%5Bdomain%5D=example.bitrix24.ru", `{"auth":{"domain":"example.bitrix24.ru"}}`},
		{"top level stays a map", "0=a&1=b", `{"0":"a","1":"b"}`},
		{"empty", "", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if got := DecodeForm(v); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

type testFields struct {
	Name  string  `json:"NAME"`
	Phone []phone `json:"PHONE,omitempty"`
	Skip  string  `json:"-"`
}

type phone struct {
	Value string `json:"VALUE"`
	Type  string `json:"VALUE_TYPE"`
}

func TestEncodeForm(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"scalars", map[string]any{"b": true, "a": 5, "c": false, "d": 1.5, "e": nil, "f": uint8(7), "g": json.Number("12")},
			"a=5&b=1&c=0&d=1.5&f=7&g=12"},
		{"escaping", map[string]any{"text": "[b]Hi[/b] & bye=1 +7 100%"},
			"text=%5Bb%5DHi%5B%2Fb%5D+%26+bye%3D1+%2B7+100%25"},
		{"nesting", map[string]any{"fields": map[string]any{"NAME": "Anna", "PHONE": []any{map[string]any{"VALUE": "+7916", "VALUE_TYPE": "MOBILE"}}}},
			"fields[NAME]=Anna&fields[PHONE][0][VALUE]=%2B7916&fields[PHONE][0][VALUE_TYPE]=MOBILE"},
		{"numeric keys in order", map[string]any{"m": map[string]any{"10": "x", "9": "y", "a": "z"}},
			"m[9]=y&m[10]=x&m[a]=z"},
		{"typed slices and maps", map[string]any{"ids": []int{3, 1}, "f": map[string]string{"B": "2", "A": "1"}},
			"f[A]=1&f[B]=2&ids[0]=3&ids[1]=1"},
		{"struct through json", map[string]any{"fields": testFields{Name: "A", Phone: []phone{{"+1", "WORK"}}, Skip: "x"}},
			"fields[NAME]=A&fields[PHONE][0][VALUE]=%2B1&fields[PHONE][0][VALUE_TYPE]=WORK"},
		{"pointer", map[string]any{"p": new("v")}, "p=v"},
		{"batch references verbatim", map[string]any{"fields": map[string]any{"CONTACT_ID": "$result[c]", "TITLE": "Deal for $result_total[find][CONTACT] x"}},
			"fields[CONTACT_ID]=$result[c]&fields[TITLE]=Deal+for+$result_total[find][CONTACT]+x"},
		{"not a reference", map[string]any{"v": "$results[x]"}, "v=%24results%5Bx%5D"},
		{"keys escaped", map[string]any{"a&b": map[string]any{"c=d": "1"}}, "a%26b[c%3Dd]=1"},
		{"empty containers vanish", map[string]any{"a": []any{}, "b": map[string]any{}, "c": "1"}, "c=1"},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EncodeForm(tt.in)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if EncodeForm(tt.in) != got {
				t.Error("not deterministic")
			}
		})
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := map[string]any{
		"CONNECTOR": "acme_whatsapp",
		"LINE":      3,
		"MESSAGES": []any{map[string]any{
			"user":    map[string]any{"id": "79161234567", "name": "Анна"},
			"message": map[string]any{"id": "wamid.1", "text": "Привет & [b]мир[/b]", "files": []any{map[string]any{"url": "https://x/a?b=c&d=e"}}},
			"chat":    map[string]any{"id": "79161234567"},
		}},
	}
	v, err := url.ParseQuery(EncodeForm(in))
	if err != nil {
		t.Fatal(err)
	}
	// What comes back is the same tree with every scalar as a string.
	want := map[string]any{}
	raw, _ := json.Marshal(in)
	json.Unmarshal([]byte(strings.ReplaceAll(string(raw), `"LINE":3`, `"LINE":"3"`)), &want)
	if got := DecodeForm(v); !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
}

// deepForm is the attack: one key nested 340,000 levels, about 1 MiB.
func deepForm() string {
	return "a" + strings.Repeat("[a]", 340000) + "=1"
}

func postForm(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/bitrix24/events", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// A form nested past maxFormDepth, or with more fields than maxFormNodes,
// is refused with 400 before it is decoded; Bitrix24's real bodies pass.
func TestReadFormCapsShape(t *testing.T) {
	many := make(url.Values)
	for i := range maxFormNodes/4 + 1 {
		many.Set("data[x]["+strconv.Itoa(i)+"][y]", "1")
	}
	for name, body := range map[string]string{"deep": deepForm(), "just past the depth cap": "a" + strings.Repeat("[a]", maxFormDepth+1) + "=1",
		"too many fields": many.Encode()} {
		_, err := readForm(httptest.NewRecorder(), postForm(body))
		var he *fault.Error
		if !errors.As(err, &he) || httperr.Status(he.Kind) != http.StatusBadRequest || he.Code != "form_too_complex" {
			t.Errorf("%s: %v, want 400 form_too_complex", name, err)
		}
	}
	for _, name := range []string{"install-event.txt", "imconnector-message-add-event.txt", "imconnector-message-update-event.txt"} {
		if _, err := readForm(httptest.NewRecorder(), postForm(strings.TrimSpace(string(fixture(t, name))))); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
}

// The refusal costs a bounded number of allocations, whatever the depth:
// before the cap the deep form made ~680,000 (a map and a node a level).
func TestDeepFormAllocationsBounded(t *testing.T) {
	body := deepForm()
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := readForm(httptest.NewRecorder(), postForm(body)); err == nil {
			t.Fatal("deep form accepted")
		}
	})
	if allocs > 200 {
		t.Fatalf("refusing the deep form made %.0f allocations", allocs)
	}
	v, err := url.ParseQuery(body)
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(5, func() { DecodeForm(v) }); allocs > 20 {
		t.Fatalf("DecodeForm of the deep form made %.0f allocations", allocs)
	}
}

func BenchmarkReadFormDeep(b *testing.B) {
	body := deepForm()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := readForm(httptest.NewRecorder(), postForm(body)); err == nil {
			b.Fatal("deep form accepted")
		}
	}
}

// The check alone, on a body already read: what refusing costs beyond
// reading the request.
func BenchmarkCheckRawFormDeep(b *testing.B) {
	body := []byte(deepForm())
	b.ReportAllocs()
	for b.Loop() {
		if checkRawForm(body) == nil {
			b.Fatal("deep form accepted")
		}
	}
}
