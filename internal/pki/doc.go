// Package pki owns portal's API server credentials on disk: a private
// certificate authority, the API server's serving certificate, the admin
// client certificate, the node join token and the admin kubeconfig.
//
// Everything lives in one directory (normally <data-dir>/tls) and is created
// on first start and reused afterwards. Ensure only replaces what is missing,
// unreadable, expiring or (for the serving certificate) no longer covering
// the host names and addresses the caller asks for, so restarting the server
// never invalidates credentials that clients already hold.
//
// Files are written to a temporary name and renamed into place, and Ensure
// holds an advisory lock on the directory while it works, so two processes
// starting at once never leave a torn or mismatched certificate/key pair.
//
// # Files
//
//	ca.crt, ca.key            ECDSA P-256 CA, 10 years, CN portal-ca
//	serving.crt, serving.key  server auth, 1 year, SANs from Config.Hosts
//	admin.crt, admin.key      client auth, 1 year, CN portal-admin, O system:masters
//	token                     join token presented by agents, "portal-" + 32 hex
//
// Private keys and the token are mode 0600.
package pki
