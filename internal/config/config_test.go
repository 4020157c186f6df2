package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultsNeedNothing(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.DataDir != "./data" || c.DatabaseURL != "" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.MediaURLTTL != 24*time.Hour || c.InstagramGraphURL != c.MetaGraphURL {
		t.Fatalf("derived defaults: ttl=%v ig=%q", c.MediaURLTTL, c.InstagramGraphURL)
	}
}

func TestFileThenEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("http_addr: \":9000\"\nmeta_app_secret: from-file\nqueue_workers: 7\nmedia_url_ttl: 2h\n"), 0o600)
	c, err := Load(path, []string{"SWITCHBOARD_META_APP_SECRET=from-env", "OTHER=x", "SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":9000" || c.QueueWorkers != 7 || c.MediaURLTTL != 2*time.Hour {
		t.Fatalf("file values lost: %+v", c)
	}
	if c.MetaAppSecret != "from-env" || !c.AllowPrivateEndpoints {
		t.Fatalf("env must override file: %+v", c)
	}
}

func TestInvalidSettingsAreNamed(t *testing.T) {
	cases := map[string]string{
		"SWITCHBOARD_DATABASE_URL=mysql://x":   "SWITCHBOARD_DATABASE_URL",
		"SWITCHBOARD_PUBLIC_URL=ftp://x":       "SWITCHBOARD_PUBLIC_URL",
		"SWITCHBOARD_QUEUE_WORKERS=0":          "SWITCHBOARD_QUEUE_WORKERS",
		"SWITCHBOARD_QUEUE_LEASE=500ms":        "SWITCHBOARD_QUEUE_LEASE",
		"SWITCHBOARD_SEND_RATE=-1":             "SWITCHBOARD_SEND_RATE",
		"SWITCHBOARD_META_GRAPH_URL=not a url": "SWITCHBOARD_META_GRAPH_URL",
		"SWITCHBOARD_LOG_FORMAT=xml":           "SWITCHBOARD_LOG_FORMAT",
		"SWITCHBOARD_LOG_LEVEL=loud":           "SWITCHBOARD_LOG_LEVEL",
		"SWITCHBOARD_PUBLC_URL=https://x":      "publc_url",
	}
	for env, name := range cases {
		_, err := Load("", []string{env})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want it to name %s", env, err, name)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); err == nil {
		t.Error("missing config file accepted")
	}
	typo := filepath.Join(t.TempDir(), "typo.yaml")
	os.WriteFile(typo, []byte("publc_url: https://sb.example.com\nbogus_key: 1\n"), 0o600)
	if _, err := Load(typo, nil); err == nil || !strings.Contains(err.Error(), "bogus_key, publc_url") {
		t.Errorf("misspelt file keys: %v", err)
	}
}

// Bitrix24 registers its event handlers on the public URL: unset, it must
// follow the listen address, and a URL outsiders cannot reach is named.
func TestPublicURL(t *testing.T) {
	cases := []struct {
		env     []string
		want    string
		problem bool
	}{
		{nil, "http://localhost:8080", true},
		{[]string{"SWITCHBOARD_HTTP_ADDR=:9137"}, "http://localhost:9137", true},
		{[]string{"SWITCHBOARD_HTTP_ADDR=0.0.0.0:9137"}, "http://localhost:9137", true},
		{[]string{"SWITCHBOARD_HTTP_ADDR=127.0.0.2:81"}, "http://127.0.0.2:81", true},
		{[]string{"SWITCHBOARD_HTTP_ADDR=[::1]:81"}, "http://[::1]:81", true},
		{[]string{"SWITCHBOARD_PUBLIC_URL=http://localhost:8080"}, "http://localhost:8080", true},
		{[]string{"SWITCHBOARD_PUBLIC_URL=https://10.0.0.5"}, "https://10.0.0.5", true},
		{[]string{"SWITCHBOARD_PUBLIC_URL=http://sb.example.com"}, "http://sb.example.com", true},
		{[]string{"SWITCHBOARD_PUBLIC_URL=https://sb.example.com", "SWITCHBOARD_HTTP_ADDR=:9137"}, "https://sb.example.com", false},
	}
	for _, tc := range cases {
		c, err := Load("", tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if c.PublicURL != tc.want || (c.PublicURLProblem() != "") != tc.problem {
			t.Errorf("%v: public URL %q (want %q), problem %q", tc.env, c.PublicURL, tc.want, c.PublicURLProblem())
		}
	}
}
