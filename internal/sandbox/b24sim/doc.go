// Package b24sim is an in-process simulator of Bitrix24 (cloud) as seen by an
// Open Lines connector application: the OAuth server (oauth.bitrix.info) and
// the REST API of one or more portals, plus Bitrix24's side of the event
// contract (form-encoded ONIMCONNECTORMESSAGEADD and friends posted to the
// handlers the app bound with event.bind).
//
// The simulator only knows Bitrix24's external contract (see
// shared/docs/bitrix24.md and shared/fixtures/bitrix24); it deliberately
// imports nothing else from this repository, so it cannot drift towards what
// the gateway happens to do instead of what Bitrix24 does.
//
// One Server is one http.Handler serving both /oauth/... and /rest/..., so a
// single httptest.Server stands in for oauth.bitrix.info and every portal: a
// portal is identified by the member_id its access token was issued for, and
// the client_endpoint handed out in token responses points back at the
// simulator. It is meant to be wrapped by httptest.NewServer in tests or
// served by cmd/b24sim for manual exploration. All methods are safe for
// concurrent use.
//
// What is simulated faithfully: token lifetimes and single-use rotating
// refresh tokens, the 30-second single-use authorization code, the
// per-portal leaky bucket (503 QUERY_LIMIT_EXCEEDED), the success envelope
// with "time", list pagination (50 per page, start/next/total), batch with
// $result[...] references, PHP bracket-key parameters, string-typed values of
// the old crm.* methods, the imconnector life cycle (register → activate →
// data.set → send.messages → operator reply event → delivery status),
// event delivery without retries, automation-rule robots (bizproc.robot.*,
// RunRobot posting what the queue posts to a robot handler, and one
// bizproc.event.send answer per subscribed run), and iframe pages
// (OpenPlacement posting what the browser posts to an app page or widget,
// with a user's token that works for REST as that user).
package b24sim
