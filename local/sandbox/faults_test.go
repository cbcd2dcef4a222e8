package sandbox

import "testing"

func TestFaultMatching(t *testing.T) {
	var f Faults
	if _, err := f.Add(Fault{Service: "lambda", Action: "Invoke", Resource: "createkey", Crash: true, Nth: 2, Times: 1}); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:lambda:us-east-1:111122223333:function:createkey"
	calls := []struct {
		service, action, resource string
		hit                       bool
	}{
		{"lambda", "Invoke", "validate", false},
		{"lambda", "Invoke", arn, false},        // the first matching call: Nth is 2
		{"lambda", "Invoke", "createkey", true}, // by name or ARN alike
		{"lambda", "Invoke", arn, false},        // Times 1: spent
		{"iam", "Invoke", "createkey", false},
	}
	for i, c := range calls {
		if got := f.match(c.service, c.action, c.resource) != nil; got != c.hit {
			t.Errorf("call %d (%s %s %s): hit=%v, want %v", i, c.service, c.action, c.resource, got, c.hit)
		}
	}
	if _, err := f.Add(Fault{Service: "iam"}); err == nil {
		t.Error("a fault that does nothing must be refused")
	}
}
