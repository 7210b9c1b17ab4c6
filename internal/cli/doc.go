// Package cli holds portal's cobra commands. Commands turn flags into
// config structs and call the constructors of the roles; no business logic
// lives here.
package cli
