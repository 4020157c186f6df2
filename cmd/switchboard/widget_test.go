package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The pack command end to end: the archive it writes has manifest.json at
// its root with the gateway filled in, two runs give the same bytes, and a
// bad gateway address writes nothing.
func TestAmoCRMWidgetPack(t *testing.T) {
	t.Setenv("SWITCHBOARD_PUBLIC_URL", "")
	dir := t.TempDir()
	var out, errb bytes.Buffer
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	for _, f := range []string{a, b} {
		if err := run([]string{"amocrm-widget", "pack", "-o", f, "--gateway-url", "https://sb.example.org"}, &out, &errb); err != nil {
			t.Fatalf("pack: %v (%s)", err, errb.String())
		}
	}
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Fatal("two packs differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(da), int64(len(da)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	var manifest []byte
	for _, f := range zr.File {
		if f.Name == "manifest.json" {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(rc); err != nil {
				t.Fatal(err)
			}
			rc.Close()
			manifest = buf.Bytes()
		}
	}
	if !bytes.Contains(manifest, []byte(`"https://sb.example.org/amocrm/dp"`)) {
		t.Fatalf("manifest.json missing at the root or without the gateway: %q", manifest)
	}

	// Environment default, stdout output.
	t.Setenv("SWITCHBOARD_PUBLIC_URL", "https://env.example.org")
	out.Reset()
	if err := run([]string{"amocrm-widget", "pack", "-o", "-"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if _, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len())); err != nil {
		t.Fatalf("stdout is not a zip: %v", err)
	}
	t.Setenv("SWITCHBOARD_PUBLIC_URL", "")

	bad := filepath.Join(dir, "bad.zip")
	for _, args := range [][]string{
		{"amocrm-widget", "pack", "-o", bad, "--gateway-url", "http://sb.example.org"},
		{"amocrm-widget", "pack", "-o", bad},
		{"amocrm-widget", "pack", "-o", bad, "extra"},
		{"amocrm-widget"},
	} {
		err := run(args, &out, &errb)
		if err == nil {
			t.Errorf("%v: no error", args)
		} else if !strings.Contains(err.Error(), "gateway-url") && !strings.Contains(err.Error(), "usage") {
			t.Errorf("%v: error names neither the flag nor the usage: %v", args, err)
		}
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed pack left %s: %v", bad, err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".amocrm-widget-*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
