package filters

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the reference page of a filter from its spec.
func (s Spec) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n%s\n\n", s.Name, s.Summary)
	if s.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(s.Description))
	}
	if len(s.Fields) == 0 {
		b.WriteString("This filter takes no config.\n\n")
	} else {
		b.WriteString("| key | type | default | description |\n|---|---|---|---|\n")
		for _, f := range s.Fields {
			def := "required"
			if !f.Required {
				def = formatDefault(f.Default)
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, def,
				strings.ReplaceAll(f.Description, "|", `\|`))
		}
		b.WriteString("\n")
	}
	if s.Example != "" {
		fmt.Fprintf(&b, "Example:\n\n```yaml\n%s\n```\n\n", strings.TrimRight(s.Example, "\n"))
	}
	return b.String()
}

func formatDefault(v any) string {
	switch d := v.(type) {
	case nil:
		return "—"
	case time.Duration:
		return "`" + d.String() + "`"
	case string:
		if d == "" {
			return `""`
		}
		return "`" + d + "`"
	}
	return fmt.Sprintf("`%v`", v)
}
