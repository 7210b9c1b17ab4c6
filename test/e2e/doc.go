// Package e2e tests portal from the user's side: real `portal server`
// processes, the real kubectl (`portal kubectl`), client-go. The test binary
// is meant to run inside `unshare --net` (see `make e2e`): it only ever talks
// to servers it started on loopback, and it skips unless given -portal.
package e2e
