// Package amocrmwidget holds the amoCRM / Kommo widget's source (manifest,
// AMD script, translations, logos), embedded into the binary so that
// `switchboard amocrm-widget pack` builds the archive amoCRM accepts from
// exactly what was tested, with no checkout needed.
package amocrmwidget

import (
	"archive/zip"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Files is the widget folder as it goes into the archive.
//
//go:embed manifest.json script.js i18n/*.json images/*.png
var Files embed.FS

// DefaultGateway is the placeholder gateway address in manifest.json
// (support link, digital pipeline webhook) and script.js; Pack replaces it
// with the real one so the widget works without the admin typing it.
const DefaultGateway = "https://switchboard.example.com"

// ImageSizes are the logos amoCRM asks for and their sizes in pixels
// (docs/amocrm.md §4.1); logo_dp.png is needed because the widget has a
// digital pipeline action.
var ImageSizes = map[string]image.Point{
	"logo_main.png":   {400, 272},
	"logo_small.png":  {108, 108},
	"logo.png":        {130, 100},
	"logo_medium.png": {240, 84},
	"logo_min.png":    {84, 84},
	"logo_dp.png":     {174, 109},
}

// zipTime is every entry's modification time, so two packs of the same
// source are byte-identical (a changed archive then means changed source).
var zipTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// urlChars are the characters a gateway address may have: it is pasted
// into a JavaScript string literal and JSON, so quotes, backslashes and
// angle brackets must never get there.
var urlChars = regexp.MustCompile(`^[A-Za-z0-9:/._~%\[\]-]+$`)

// CheckGatewayURL says whether u can be the gateway's base address inside
// amoCRM: absolute, https (amoCRM's pages are https and refuse mixed
// content; http only for a loopback host in development), no query.
func CheckGatewayURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || !urlChars.MatchString(u) || p.Host == "" || p.RawQuery != "" || p.Fragment != "" || p.User != nil {
		return fmt.Errorf("gateway URL %q: want an absolute address like https://switchboard.example.com", u)
	}
	switch {
	case p.Scheme == "https":
	case p.Scheme == "http" && (p.Hostname() == "localhost" || p.Hostname() == "127.0.0.1" || p.Hostname() == "::1"):
	default:
		return fmt.Errorf("gateway URL %q: amoCRM loads the widget's pages over https only", u)
	}
	return nil
}

// Pack writes the widget archive to w: every file at the zip's root (no
// enclosing folder, as amoCRM requires), entries sorted, fixed times. A
// non-empty gatewayURL replaces DefaultGateway in manifest.json and
// script.js.
func Pack(w io.Writer, gatewayURL string) error {
	gatewayURL = strings.TrimRight(gatewayURL, "/")
	if gatewayURL != "" {
		if err := CheckGatewayURL(gatewayURL); err != nil {
			return err
		}
	}
	var names []string
	err := fs.WalkDir(Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	zw := zip.NewWriter(w)
	for _, name := range names {
		data, err := Files.ReadFile(name)
		if err != nil {
			return err
		}
		if gatewayURL != "" && (name == "manifest.json" || name == "script.js") {
			data = bytes.ReplaceAll(data, []byte(DefaultGateway), []byte(gatewayURL))
		}
		method := zip.Deflate
		if strings.HasSuffix(name, ".png") {
			method = zip.Store // already compressed
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: zipTime})
		if err != nil {
			return err
		}
		if _, err := fw.Write(data); err != nil {
			return err
		}
	}
	if len(names) == 0 {
		return errors.New("amocrm widget: no files embedded")
	}
	return zw.Close()
}
