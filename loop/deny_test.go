package loop

import (
	"slices"
	"testing"
)

// TestDeliveryDeny: a subscription carries exactly the deny entries that
// can match inside it, and none (nil, so deliveries skip the check) when no
// entry overlaps it or the user has no deny list.
func TestDeliveryDeny(t *testing.T) {
	p := newPermissions(&Permissions{Subscribe: &SubjectPermission{Deny: []string{"secret.>", "*.x", "audit.> q"}}})
	cases := []struct {
		subject, queue string
		want           []string
	}{
		{">", "", []string{"secret.>", "*.x"}},
		{"*.*", "", []string{"secret.>", "*.x"}},
		{"a.*", "", []string{"*.x"}},
		{">", "q", []string{"secret.>", "*.x", "audit.>"}}, // the queue's own entry too
		{">", "r", []string{"secret.>", "*.x"}},
		{"public.>", "", []string{"*.x"}},
		{"public.*.y", "", nil},
		{"public.y", "", nil},
	}
	for _, c := range cases {
		if got := p.deliveryDeny(c.subject, c.queue); !slices.Equal(got, c.want) || (c.want == nil) != (got == nil) {
			t.Errorf("deliveryDeny(%q, %q) = %q, want %q", c.subject, c.queue, got, c.want)
		}
	}
	var none *permissions
	if got := none.deliveryDeny(">", ""); got != nil {
		t.Errorf("no permissions: %q", got)
	}
	allowOnly := newPermissions(&Permissions{Subscribe: &SubjectPermission{Allow: []string{">"}}})
	if got := allowOnly.deliveryDeny(">", ""); got != nil {
		t.Errorf("no deny list: %q", got)
	}
}
