package store

import (
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ChannelFeed is what storing a channel's message needs to know about
// where it goes: every binding of the channel (live or not, with its
// integration's state and type, ordered by binding id) and the channel's
// routing (RoutingAll with an empty config when it has no row).
type ChannelFeed struct {
	Bindings []StatedBinding
	Routing  ChannelRouting
}

// feedCacheTTL is how long this instance trusts a channel's feed it read
// for storing messages. Every stored message used to pay two queries for
// it (bindings, routing). A change made through this instance clears the
// cache (after its transaction, too: see Store.Tx), so only a change made
// through another instance is seen late, by at most this long. A message
// stored meanwhile goes where it would have gone had it come that much
// earlier, before the change; the reads were always in READ COMMITTED
// statements, so that race existed, only shorter. What it costs, case by
// case:
//   - a binding removed (unbind, uninstall, a rebind deleting the old
//     one): the message still updates that integration's dialog (a row
//     in an integration the channel no longer feeds, as an unbind racing
//     a delivery could leave before) and queues a mirror job for the
//     binding, which finds it gone and does nothing; an integration
//     deleted outright makes the dialog insert fail its foreign key and
//     the delivery is refused (5xx), so Meta sends it again later;
//   - a binding added: the message is not counted in its dialog, as one
//     stored just before the bind would not be; it is still mirrored,
//     with the binding's next job (which takes every unmirrored message
//     since the binding was made);
//   - an integration's state changed: the message is mirrored or parked
//     by the old state; the mirror job reads the integration when it runs
//     and parks (needs re-authorisation) or drops (uninstalled) its work,
//     so no CRM call is made for a dead integration;
//   - a binding's settings changed (mirror mode, owner policy): the
//     message is routed by the old ones; the mirror job reads the binding
//     again when it runs and follows a switched mode.
//
// Branch mode is the exception: a channel whose routing is "branch" is
// never served from the cache, its feed is read in the storing
// transaction every time. A stale "branch" read after a switch to "all"
// would hold the customer's message for a menu nobody sends (the switch
// has released the held customers already), and a stale set of bindings
// would number the menu differently from the one the customer answers.
// A stale "all" after a switch to "branch" only stores the message as if
// it came before the switch.
const feedCacheTTL = time.Second

// feedCache keeps channels' feeds by channel id; one integration's change
// touches every channel it is bound to, so every change clears it all.
type feedCache = genCache[string, ChannelFeed]

// cloneFeed copies a feed with its own bindings, so a caller may change
// what it got from the cache.
func cloneFeed(f *ChannelFeed) ChannelFeed {
	out := ChannelFeed{Routing: f.Routing}
	if f.Bindings != nil {
		out.Bindings = make([]StatedBinding, len(f.Bindings))
		copy(out.Bindings, f.Bindings)
	}
	return out
}

// ForgetFeeds drops the channel feeds this instance cached. The store's
// own writes to bindings, integrations and routing do it by themselves;
// it is for a test or tool that changes those rows behind the store's
// back and must see the change before feedCacheTTL passes.
func (s *Store) ForgetFeeds() { s.feeds.invalidate() }

// FeedOf returns the feed of a channel for storing a message in tx: from
// this instance's cache when it was read within feedCacheTTL (see there
// for what a stale one costs), else read in tx.
func (s *Store) FeedOf(tx *gorm.DB, channelID string) (*ChannelFeed, error) {
	now := time.Now()
	f, gen := s.feeds.get(channelID, now)
	if f != nil {
		return f, nil
	}
	f, err := readFeed(tx, channelID)
	if err != nil {
		return nil, err
	}
	if f.Routing.Mode != RoutingBranch {
		s.feeds.put(channelID, f, gen, now)
	}
	return f, nil
}

// readFeed reads a channel's bindings and routing in one round trip: the
// one-row select joined to the routing row and to each binding (with its
// integration). Hand-written and scanned by hand: gorm's Scan renders the
// statement with its arguments for a trace recorder, a regexp pass that
// cost as much CPU as the query.
func readFeed(tx *gorm.DB, channelID string) (*ChannelFeed, error) {
	q := feedSQLite
	if tx.Dialector.Name() == string(Postgres) {
		q = feedPostgres
	}
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, q, channelID)
	if err != nil {
		return nil, fmt.Errorf("store: feed of channel %s: %w", channelID, err)
	}
	defer rows.Close()
	f := &ChannelFeed{Routing: ChannelRouting{ChannelID: channelID, Mode: RoutingAll, Config: "{}"}}
	for rows.Next() {
		var (
			mode, config, id                        sql.NullString
			routingAt, createdAt, updatedAt         sql.NullTime
			b                                       StatedBinding
			ws, integ, ch, bmode, line, entity, cat sql.NullString
			stage, name, policy, repeat, mirror, st sql.NullString
			typ                                     sql.NullString
		)
		err := rows.Scan(&mode, &config, &routingAt, &id, &ws, &integ, &ch, &bmode, &line, &entity, &cat, &stage,
			&b.Settings, &name, &policy, &repeat, &mirror, &createdAt, &updatedAt, &st, &typ)
		if err != nil {
			return nil, fmt.Errorf("store: feed of channel %s: %w", channelID, err)
		}
		if mode.Valid {
			f.Routing.Mode, f.Routing.Config, f.Routing.UpdatedAt = mode.String, config.String, routingAt.Time
		}
		if !id.Valid {
			continue // no binding: the one row carries the routing alone
		}
		b.ID, b.WorkspaceID, b.IntegrationID, b.ChannelID = id.String, ws.String, integ.String, ch.String
		b.Mode, b.LineID, b.Entity, b.CategoryID, b.StageID = bmode.String, line.String, entity.String, cat.String, stage.String
		b.Name, b.OwnerPolicy, b.OnRepeat, b.Mirror = name.String, policy.String, repeat.String, mirror.String
		b.CreatedAt, b.UpdatedAt = createdAt.Time, updatedAt.Time
		b.IntegrationState, b.IntegrationType = st.String, typ.String
		f.Bindings = append(f.Bindings, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: feed of channel %s: %w", channelID, err)
	}
	return f, nil
}

// feedColumns and feedFrom make readFeed's statement; only the channel
// id's placeholder differs between the engines.
const feedColumns = `SELECT r.mode, r.config, r.updated_at,
	b.id, b.workspace_id, b.integration_id, b.channel_id, b.mode, b.line_id, b.entity, b.category_id, b.stage_id,
	b.settings, b.name, b.owner_policy, b.on_repeat, b.mirror, b.created_at, b.updated_at, i.state, i.type
FROM `
const feedFrom = ` x
LEFT JOIN channel_routing r ON r.channel_id = x.cid
LEFT JOIN (channel_bindings b JOIN integrations i ON i.id = b.integration_id) ON b.channel_id = x.cid
ORDER BY b.id`

const (
	feedPostgres = feedColumns + `(SELECT $1::text AS cid)` + feedFrom
	feedSQLite   = feedColumns + `(SELECT ? AS cid)` + feedFrom
)
