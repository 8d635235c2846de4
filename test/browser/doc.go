// Package browser drives the admin UI in a real headless Chromium (Debian's chromium
// package) over the DevTools protocol: log in with a TOTP code, approve a rollout as an
// approver, and keep a screenshot of the compliance page as a test artefact
// (go test -artifacts -outputdir DIR ./test/browser keeps it under DIR).
package browser
