package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	amocrmwidget "github.com/switchboard/switchboard/web/amocrm-widget"
)

// amocrmWidgetCommand runs "switchboard amocrm-widget pack": it writes the
// archive amoCRM accepts for upload, built from the widget source embedded
// in this binary, so the archive always matches the gateway's version.
func amocrmWidgetCommand(args []string, stdout, stderr io.Writer) error {
	const usage = `usage: switchboard amocrm-widget pack [-o widget.zip] [--gateway-url https://…]`
	if len(args) == 0 || args[0] != "pack" {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("switchboard amocrm-widget pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "amocrm-widget.zip", `the archive to write ("-" for stdout)`)
	gw := fs.String("gateway-url", os.Getenv("SWITCHBOARD_PUBLIC_URL"),
		"the gateway's public https address the widget's pages load from (default: SWITCHBOARD_PUBLIC_URL)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (%s)", fs.Args(), usage)
	}
	if *gw == "" {
		return errors.New("--gateway-url: the gateway's public address is needed (or set SWITCHBOARD_PUBLIC_URL)")
	}
	if err := amocrmwidget.CheckGatewayURL(*gw); err != nil {
		return fmt.Errorf("--gateway-url: %w", err)
	}
	if *out == "-" {
		return amocrmwidget.Pack(stdout, *gw)
	}
	// Written beside the target and renamed, so a failed pack never leaves
	// a half archive someone might upload.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".amocrm-widget-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if err := amocrmwidget.Pack(tmp, *gw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "amoCRM widget for %s written to %s\n", *gw, *out)
	return nil
}
