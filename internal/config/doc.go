// Package config holds the typed configuration of portal's roles, their
// defaults and the validation of flag values. Commands fill these structs
// from flags; constructors take them; nothing deeper reads flags or env.
package config
