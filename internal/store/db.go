// Package store owns the database: opening either engine, applying the
// versioned migrations, the models and the queries on them.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/switchboard/switchboard/migrations"
)

// Dialect names the database engine.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// postgresMaxConns bounds each instance's PostgreSQL connections.
const postgresMaxConns = 20

// DB is the gateway's database handle.
type DB struct {
	Gorm    *gorm.DB
	Dialect Dialect
	// Log receives migration progress; nil means slog.Default().
	Log *slog.Logger
}

// Open connects to PostgreSQL when url starts with postgres:// (or
// postgresql://), otherwise to the embedded SQLite file at sqlitePath
// (":memory:" for a throw-away database).
func Open(ctx context.Context, url, sqlitePath string) (*DB, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return Now() },
	}
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		g, err := gorm.Open(postgres.Open(url), cfg)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		sqlDB, err := g.DB()
		if err != nil {
			return nil, fmt.Errorf("store: postgres pool: %w", err)
		}
		// As many idle as open: with fewer, a burst's connections are
		// closed as they come back and reopened for the next burst, each
		// a new PostgreSQL backend (a fork, and every prepared statement
		// prepared again); a load run of 33,000 webhooks opened 400. Idle
		// ones still close after five minutes unused.
		sqlDB.SetMaxOpenConns(postgresMaxConns)
		sqlDB.SetMaxIdleConns(postgresMaxConns)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
		if err := sqlDB.PingContext(ctx); err != nil {
			return nil, fmt.Errorf("store: ping postgres: %w", err)
		}
		return &DB{Gorm: g, Dialect: Postgres}, nil
	}
	if url != "" {
		return nil, fmt.Errorf("store: database url must start with postgres:// (got scheme %q)", scheme(url))
	}
	dsn := sqlitePath
	if sqlitePath == ":memory:" {
		// A named shared-cache memory database lives as long as one
		// connection is open; the pool keeps exactly one.
		dsn = fmt.Sprintf("file:mem%d?mode=memory&cache=shared", time.Now().UnixNano())
	} else if err := os.MkdirAll(filepath.Dir(sqlitePath), 0o700); err != nil {
		return nil, fmt.Errorf("store: create data dir: %w", err)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	dsn += sep + "_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	g, err := gorm.Open(sqlite.Open(dsn), cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("store: sqlite pool: %w", err)
	}
	// SQLite has one writer; a single connection turns lock contention
	// into queueing inside database/sql instead of SQLITE_BUSY errors.
	sqlDB.SetMaxOpenConns(1)
	sqlDB.SetConnMaxIdleTime(0)
	sqlDB.SetConnMaxLifetime(0)
	if err := sqlDB.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("store: ping sqlite: %w", err)
	}
	return &DB{Gorm: g, Dialect: SQLite}, nil
}

// AutovacuumOff reports whether the database is PostgreSQL with autovacuum
// switched off: the jobs table leaves hundreds of thousands of dead rows an
// hour under load, and without vacuum its claims slow until the backlog
// grows faster than it drains.
func (d *DB) AutovacuumOff(ctx context.Context) (bool, error) {
	if d.Dialect != Postgres {
		return false, nil
	}
	var v string
	if err := d.SQL().QueryRowContext(ctx, "SHOW autovacuum").Scan(&v); err != nil {
		return false, fmt.Errorf("store: show autovacuum: %w", err)
	}
	return v == "off", nil
}

func scheme(url string) string {
	if i := strings.Index(url, ":"); i > 0 {
		return url[:i]
	}
	return ""
}

// SQL returns the underlying pool.
func (d *DB) SQL() *sql.DB {
	s, _ := d.Gorm.DB()
	return s
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return d.SQL().PingContext(ctx)
}

func (d *DB) Close() error { return d.SQL().Close() }

// Migrate applies every pending migration of this engine.
func (d *DB) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations.FS, string(d.Dialect))
	if err != nil {
		return fmt.Errorf("store: migrations for %s: %w", d.Dialect, err)
	}
	dialect := goose.DialectPostgres
	if d.Dialect == SQLite {
		dialect = goose.DialectSQLite3
	}
	p, err := goose.NewProvider(dialect, d.SQL(), sub)
	if err != nil {
		return fmt.Errorf("store: migration provider: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	for _, r := range res {
		log.Info("migration applied", "engine", d.Dialect, "version", r.Source.Version, "took", r.Duration)
	}
	return nil
}

// Now is the database clock: UTC, microsecond precision, so a time read
// back from PostgreSQL equals the one written and SQLite's text times
// compare in order.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
