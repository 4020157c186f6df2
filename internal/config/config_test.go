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
		"SWITCHBOARD_SEND_RATE=-1":             "SWITCHBOARD_SEND_RATE",
		"SWITCHBOARD_META_GRAPH_URL=not a url": "SWITCHBOARD_META_GRAPH_URL",
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
}
