// Package amosim is an in-process simulator of amoCRM (and Kommo) as seen by
// an integration installed as a widget: the OAuth token endpoint of every
// account, the REST API v4 endpoints the gateway uses, the disable hook and
// disposable widget tokens, and the Chats API (amojo) with its signed
// requests and the outgoing hook a manager's reply produces.
//
// The simulator only knows amoCRM's external contract (shared/docs/amocrm.md
// and shared/fixtures/amocrm); it imports nothing else from this repository,
// so it cannot drift towards what the gateway happens to do instead of what
// amoCRM does. In particular it signs and verifies amojo requests with its
// own code, so a client bug in the signature cannot be mirrored here.
//
// One Server is one http.Handler serving every account's host
// (https://{subdomain}.amocrm.ru: /oauth2/..., /api/v4/...) and amojo
// (/v2/origin/custom/...): an account is identified by the access token (API),
// the authorization code or refresh token (OAuth) or the scope_id (amojo),
// never by the Host header, so one httptest.Server stands in for all of them.
//
// What is simulated faithfully: single-use authorization codes that expire
// after 20 minutes; single-use, rotating refresh tokens (reusing one gets the
// real 400 problem-JSON with hint "Token has been revoked"); access tokens
// that expire after 24 hours (401); long-lived tokens; HAL answers with
// _embedded, _page and _links.next; 204 with an empty body for an empty list
// or an unknown id; application/problem+json errors with validation-errors per
// request_id; 402 for an unpaid account; the limit of 7 requests per second
// per account answered with the raw, non-JSON 429 of the fixture; the
// contacts search as a text match (phones matched on their digits, so the
// country prefix matters); statuses 142 and 143 in every pipeline; amojo's
// Date/Content-MD5/X-Signature check (403), scope ids and the hook signature;
// the widget's digital pipeline action saved on a stage (only the settings
// the manifest declares, the required ones filled) and its run posted,
// form-encoded and unsigned, when a lead moves in (MoveLead, Redeliver);
// tasks created (POST /api/v4/tasks) and completed (PATCH /api/v4/tasks:
// an unknown id, a result without is_completed true or without its text
// is refused).
//
// It also serves what a user sees of the widget (frames.go): a minimal
// advanced settings page and lead or contact card on the simulator's own
// origin, the account's as far as the gateway knows, whose script trades a
// freshly minted disposable token for the gateway's ticket in the browser
// and frames the gateway's page, as the widget's script does in amoCRM.
//
// All methods are safe for concurrent use.
package amosim
