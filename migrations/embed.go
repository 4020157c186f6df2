// Package migrations embeds the versioned schema, one directory per engine
// because the column types differ (timestamptz and bigserial on PostgreSQL).
// Both directories must describe the same schema at every version.
package migrations

import "embed"

//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
