// Package web holds the pages people see, embedded into the binary: the
// Bitrix24 app page and CRM card tab for now, the admin cabinet later.
package web

import "embed"

//go:embed templates/*.html
var Templates embed.FS

// Static are the pages' scripts, served from the gateway itself (the
// pages' CSP allows no inline script).
//
//go:embed static/*.js
var Static embed.FS
