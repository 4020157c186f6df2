package amocrmwidget

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

type manifest struct {
	Widget struct {
		Name             string   `json:"name"`
		Description      string   `json:"description"`
		ShortDescription string   `json:"short_description"`
		Version          string   `json:"version"`
		InterfaceVersion int      `json:"interface_version"`
		InitOnce         *bool    `json:"init_once"`
		Locale           []string `json:"locale"`
		Installation     *bool    `json:"installation"`
		SecretKey        string   `json:"secret_key"`
		Support          struct {
			Link  string `json:"link"`
			Email string `json:"email"`
		} `json:"support"`
	} `json:"widget"`
	Locations []string `json:"locations"`
	Settings  map[string]struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Required *bool  `json:"required"`
	} `json:"settings"`
	Advanced *struct {
		Title string `json:"title"`
	} `json:"advanced"`
	DP *struct {
		Settings map[string]struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"settings"`
		WebhookURL string `json:"webhook_url"`
	} `json:"dp"`
}

func readManifest(t *testing.T, data []byte) manifest {
	t.Helper()
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return m
}

func i18n(t *testing.T, lang string) map[string]any {
	t.Helper()
	data, err := Files.ReadFile("i18n/" + lang + ".json")
	if err != nil {
		t.Fatalf("i18n/%s.json: %v", lang, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("i18n/%s.json: %v", lang, err)
	}
	return m
}

// resolve finds a dotted key ("widget.name") in a translation file; amoCRM
// shows the key itself when it is missing, which a person would see.
func resolve(m map[string]any, key string) (string, bool) {
	var cur any = m
	for _, part := range strings.Split(key, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		cur = obj[part]
	}
	s, ok := cur.(string)
	return s, ok && strings.TrimSpace(s) != ""
}

// leaves lists every dotted key with a string value.
func leaves(prefix string, v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leaves(p, c, out)
		}
	default:
		*out = append(*out, prefix)
	}
}

var locationRE = regexp.MustCompile(`^(lcard|ccard|comcard|cucard|llist|clist|tlist|culist|card_sdk|catalogs|lead_sources|whatsapp_modal|sms|mobile_card|salesbot_designer|amoforms)-[01]$|^(settings|advanced_settings|digital_pipeline|everywhere)$`)

func TestManifest(t *testing.T) {
	data, err := Files.ReadFile("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		t.Fatal("manifest.json starts with a BOM; amoCRM wants UTF-8 without one")
	}
	m := readManifest(t, data)
	w := m.Widget
	if w.Name == "" || w.Description == "" || w.ShortDescription == "" {
		t.Fatalf("name/description/short_description missing: %+v", w)
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(w.Version) {
		t.Fatalf("version %q is not x.y.z", w.Version)
	}
	if w.InterfaceVersion != 2 || w.InitOnce == nil || w.Installation == nil || !*w.Installation {
		t.Fatalf("interface_version 2, init_once and installation: true wanted: %+v", w)
	}
	if w.Support.Link == "" && w.Support.Email == "" {
		t.Fatal("support needs a link or an e-mail")
	}
	if w.SecretKey != "" {
		t.Fatal("no secret belongs in the widget archive")
	}
	want := []string{"lcard-1", "ccard-1", "settings", "advanced_settings", "digital_pipeline"}
	for _, l := range want {
		if !contains(m.Locations, l) {
			t.Errorf("location %s missing from %v", l, m.Locations)
		}
	}
	for _, l := range m.Locations {
		if !locationRE.MatchString(l) {
			t.Errorf("location %q is not one amoCRM knows", l)
		}
	}
	if len(m.Settings) == 0 {
		t.Fatal("installation: true needs settings")
	}
	if s, ok := m.Settings["gateway_url"]; !ok || s.Type != "text" || s.Required == nil {
		t.Fatalf("gateway_url setting wanted as {name, type: text, required}: %+v", s)
	}
	customs := 0
	for code, s := range m.Settings {
		switch s.Type {
		case "text", "pass", "users", "users_lp":
		case "custom":
			customs++
		default:
			t.Errorf("setting %s: type %q unknown to amoCRM", code, s.Type)
		}
		if s.Name == "" || s.Required == nil {
			t.Errorf("setting %s needs name and required", code)
		}
	}
	if customs > 1 {
		t.Errorf("amoCRM allows one custom setting, have %d", customs)
	}
	if contains(m.Locations, "advanced_settings") && (m.Advanced == nil || m.Advanced.Title == "") {
		t.Fatal("advanced_settings needs advanced.title")
	}
	if contains(m.Locations, "digital_pipeline") && (m.DP == nil || len(m.DP.Settings) == 0 || !strings.HasPrefix(m.DP.WebhookURL, DefaultGateway+"/")) {
		t.Fatalf("digital_pipeline needs dp.settings and dp.webhook_url on the gateway: %+v", m.DP)
	}

	// Every i18n key the manifest names resolves in every declared locale.
	if !contains(w.Locale, "ru") || !contains(w.Locale, "en") {
		t.Fatalf("locale %v: ru and en wanted", w.Locale)
	}
	keys := []string{w.Name, w.Description, w.ShortDescription, m.Advanced.Title}
	for _, s := range m.Settings {
		keys = append(keys, s.Name)
	}
	for _, s := range m.DP.Settings {
		keys = append(keys, s.Name)
	}
	for _, lang := range w.Locale {
		tr := i18n(t, lang)
		for _, k := range keys {
			if _, ok := resolve(tr, k); !ok {
				t.Errorf("i18n/%s.json: key %q missing or empty", lang, k)
			}
		}
	}
}

// TestI18nSameKeys: amoCRM wants identical key structure in every locale,
// and the script reads card.* and page.* keys too.
func TestI18nSameKeys(t *testing.T) {
	var ru, en []string
	leaves("", i18n(t, "ru"), &ru)
	leaves("", i18n(t, "en"), &en)
	sort.Strings(ru)
	sort.Strings(en)
	if strings.Join(ru, ",") != strings.Join(en, ",") {
		t.Fatalf("ru and en keys differ:\nru %v\nen %v", ru, en)
	}
	script, err := Files.ReadFile("script.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`message\(\$\w+, '([\w.]+)'\)`).FindAllSubmatch(script, -1) {
		for _, lang := range []string{"ru", "en"} {
			if _, ok := resolve(i18n(t, lang), string(m[1])); !ok {
				t.Errorf("script.js uses %q, missing in i18n/%s.json", m[1], lang)
			}
		}
	}
}

// callbacksFor is what amoCRM calls in each area (docs/amocrm.md §4.3).
var callbacksFor = map[string][]string{
	"":                  {"render", "init", "bind_actions", "destroy"}, // every area
	"lcard":             {"render", "init", "bind_actions"},
	"ccard":             {"render", "init", "bind_actions"},
	"settings":          {"settings", "onSave"},
	"advanced_settings": {"advancedSettings"},
	"digital_pipeline":  {"dpSettings"},
	"llist":             {"leads:selected"},
	"clist":             {"contacts:selected"},
}

var callbackRE = regexp.MustCompile(`(?m)^\s*'?([A-Za-z_]+(?::[a-z]+)?)'?\s*:\s*function\s*\(`)

func scriptCallbacks(script []byte) map[string]bool {
	i := bytes.Index(script, []byte("this.callbacks = {"))
	if i < 0 {
		return nil
	}
	got := map[string]bool{}
	for _, m := range callbackRE.FindAllSubmatch(script[i:], -1) {
		got[string(m[1])] = true
	}
	return got
}

func TestEveryLocationHasItsCallback(t *testing.T) {
	script, err := Files.ReadFile("script.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(script, []byte("define(['jquery'], function ($)")) || !bytes.Contains(script, []byte("return this;")) {
		t.Fatal("script.js is not the AMD module amoCRM loads")
	}
	got := scriptCallbacks(script)
	if len(got) == 0 {
		t.Fatal("no this.callbacks in script.js")
	}
	m := readManifest(t, mustRead(t, "manifest.json"))
	for _, loc := range append([]string{""}, m.Locations...) {
		area := strings.TrimSuffix(strings.TrimSuffix(loc, "-1"), "-0")
		need, ok := callbacksFor[area]
		if !ok {
			t.Errorf("location %s: the test does not know its callbacks", loc)
		}
		for _, cb := range need {
			if !got[cb] {
				t.Errorf("location %q needs callback %s; script.js has %v", loc, cb, got)
			}
		}
	}
	for _, bad := range []string{"eval(", "alert(", "confirm(", "async: false", "client_secret", "secret_key", "channel_secret"} {
		if bytes.Contains(script, []byte(bad)) {
			t.Errorf("script.js contains %q (marketplace rules / no secrets)", bad)
		}
	}
	// The pages the gateway serves, and the ticket exchange before them.
	for _, s := range []string{"'/amocrm/card?'", "'/amocrm/settings?'", "'/amocrm/widget/ticket'", "$authorizedAjax", "gateway_url", "'#work-area-'"} {
		if !bytes.Contains(script, []byte(s)) {
			t.Errorf("script.js lacks %s", s)
		}
	}
	if node, err := exec.LookPath("node"); err == nil {
		if out, err := exec.Command(node, "--check", "script.js").CombinedOutput(); err != nil {
			t.Fatalf("node --check script.js: %v\n%s", err, out)
		}
	}
}

func TestImageSizes(t *testing.T) {
	for name, want := range ImageSizes {
		data, err := Files.ReadFile("images/" + name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(data) > 300<<10 {
			t.Errorf("%s: %d bytes, amoCRM takes up to 300 KB", name, len(data))
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if cfg.Width != want.X || cfg.Height != want.Y {
			t.Errorf("%s is %dx%d, amoCRM wants %dx%d", name, cfg.Width, cfg.Height, want.X, want.Y)
		}
	}
}

func TestPack(t *testing.T) {
	var a, b bytes.Buffer
	if err := Pack(&a, ""); err != nil {
		t.Fatal(err)
	}
	if err := Pack(&b, ""); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two packs of the same source differ")
	}
	files := unzip(t, a.Bytes())
	for _, name := range []string{"manifest.json", "script.js", "i18n/ru.json", "i18n/en.json", "images/logo_dp.png"} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s not at the archive's root: %v", name, keys(files))
		}
	}
	if _, ok := files["gen_images.go"]; ok {
		t.Error("the generator went into the archive")
	}

	var c bytes.Buffer
	if err := Pack(&c, "https://sb.example.org/"); err != nil {
		t.Fatal(err)
	}
	files = unzip(t, c.Bytes())
	m := readManifest(t, files["manifest.json"])
	if m.DP.WebhookURL != "https://sb.example.org/amocrm/dp" {
		t.Errorf("dp.webhook_url %q", m.DP.WebhookURL)
	}
	if !bytes.Contains(files["script.js"], []byte("var DEFAULT_GATEWAY = 'https://sb.example.org';")) || bytes.Contains(files["script.js"], []byte(DefaultGateway)) {
		t.Error("script.js keeps the placeholder gateway")
	}
	if bytes.Contains(files["manifest.json"], []byte(DefaultGateway)) {
		t.Error("manifest.json keeps the placeholder gateway")
	}
	if node, err := exec.LookPath("node"); err == nil {
		f := filepath.Join(t.TempDir(), "script.js")
		if err := os.WriteFile(f, files["script.js"], 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
			t.Fatalf("packed script.js: %v\n%s", err, out)
		}
	}
	var l bytes.Buffer
	if err := Pack(&l, "http://[::1]:8080"); err != nil {
		t.Errorf("loopback gateway for development: %v", err)
	}

	for _, bad := range []string{"ftp://x", "http://sb.example.org", "sb.example.org", "https://sb.example.org/?a=1", "https://sb.example.org/x'y", "https://sb.example.org/<b>"} {
		var d bytes.Buffer
		if err := Pack(&d, bad); err == nil || d.Len() != 0 {
			t.Errorf("gateway %q: err %v, %d bytes written", bad, err, d.Len())
		}
	}
}

func unzip(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	out := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		out[f.Name] = buf.Bytes()
		names = append(names, f.Name)
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("entries not sorted: %v", names)
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := Files.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
