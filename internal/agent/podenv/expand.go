package podenv

import "strings"

// Expand replaces $(VAR) references in s with their values from env. As in
// the kubelet, a reference to an unknown variable is kept verbatim, "$$"
// yields a literal "$" (so "$$(VAR)" is the text "$(VAR)"), and a "$" not
// followed by "(" or "$" — or a "$(" never closed — is copied as is.
func Expand(s string, env map[string]string) string {
	return expand(s, func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	})
}

func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				// Unterminated: emit "$(" and keep scanning after it.
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// ExpandCommand expands $(VAR) references in a container's command and args
// against its final environment, given as "K=V" entries (later entries win).
func ExpandCommand(command, args []string, env []string) ([]string, []string) {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return expandAll(command, m), expandAll(args, m)
}

func expandAll(in []string, env map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = Expand(s, env)
	}
	return out
}
