// Package netns owns named network namespaces on Linux: a namespace kept
// alive by bind-mounting its nsfs inode onto a file (as `ip netns add`
// does), deleting it again, and running code or starting processes inside
// one without leaking the namespace into other goroutines' OS threads.
package netns
