package mqtt

import "testing"

func TestTopicToSubject(t *testing.T) {
	cases := []struct{ topic, subject string }{
		{"foo", "foo"}, {"foo/bar", "foo.bar"}, {"/foo", "/.foo"}, {"foo/", "foo./"},
		{"a//b", "a./.b"}, {"a///b", "a././.b"}, {"a.b/c", "a//b.c"}, {"/", "/./"},
		{"$SYS/x", "$SYS.x"},
	}
	for _, c := range cases {
		got, err := TopicToSubject(c.topic, false)
		if err != nil || got != c.subject {
			t.Errorf("TopicToSubject(%q) = %q, %v; want %q", c.topic, got, err, c.subject)
		}
		if back := SubjectToTopic(got); back != c.topic {
			t.Errorf("SubjectToTopic(%q) = %q; want %q", got, back, c.topic)
		}
	}
	if s, _ := TopicToSubject("a/+/#", true); s != "a.*.>" {
		t.Errorf("filter: %q", s)
	}
	for _, bad := range []string{"a b", "a\tb", "a\x7f"} {
		if _, err := TopicToSubject(bad, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	subs, _ := FilterSubjects("foo/#")
	if len(subs) != 2 || subs[0] != "foo" || subs[1] != "foo.>" {
		t.Errorf("foo/# -> %v", subs)
	}
	if !SkipsDollarTopics("#") || !SkipsDollarTopics("+/x") || SkipsDollarTopics("$SYS/#") {
		t.Error("dollar topic rule")
	}
}
