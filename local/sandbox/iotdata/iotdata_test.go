package iotdata_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/keyrotator/keyrotator/local/fullsandbox"
	"github.com/keyrotator/keyrotator/local/sandbox/iotdata"
	"github.com/keyrotator/keyrotator/local/sandbox/sandboxtest"
)

// publish signs a Publish the way the SDK's iotdataplane client does.
func publish(t *testing.T, base, topic, keyID, secret string, payload []byte) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/topics/"+url.PathEscape(topic)+"?qos=1", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(payload)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}, req,
		hex.EncodeToString(sum[:]), iotdata.SigningName, "ap-northeast-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// Publish is signed with "iotdata", marks the key used (as IAM names the service: iot), and — a data event —
// never shows in CloudTrail's event history.
func TestPublish(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t, fullsandbox.Options{IAMLag: fullsandbox.NoIAMLag}) // about the use, not IAM's reporting lag
	keys := sb.User(t, "device-gateway", 1)
	k := keys[0]
	cases := []struct {
		name, topic, secret string
		want                int
		code                string
	}{
		{"topic with slashes", "devices/001010000000001/temp", k.SecretAccessKey, 200, ""},
		{"wildcard topic", "devices/#", k.SecretAccessKey, 400, "InvalidRequestException"},
		{"wrong secret", "devices/x", "not-the-secret", 403, "InvalidSignatureException"},
	}
	for _, c := range cases {
		status, h := publish(t, sb.URL, c.topic, k.AccessKeyID, c.secret, []byte(`{"temperature":21.5}`))
		if status != c.want || h.Get("X-Amzn-Errortype") != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, h.Get("X-Amzn-Errortype"), c.want, c.code)
		}
	}
	var msgs struct {
		Count    int               `json:"count"`
		Messages []iotdata.Message `json:"messages"`
	}
	sb.AdminCall(t, http.MethodGet, "/iotdata/messages", nil, &msgs)
	if msgs.Count != 1 || msgs.Messages[0].Topic != "devices/001010000000001/temp" || msgs.Messages[0].QoS != 1 ||
		msgs.Messages[0].AccessKeyID != k.AccessKeyID || msgs.Messages[0].Region != "ap-northeast-1" {
		t.Fatalf("messages: %+v", msgs)
	}

	cfg := sb.Config(t)
	lu, err := iam.NewFromConfig(cfg).GetAccessKeyLastUsed(context.Background(), &iam.GetAccessKeyLastUsedInput{AccessKeyId: aws.String(k.AccessKeyID)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(lu.AccessKeyLastUsed.ServiceName) != "iot" || aws.ToString(lu.AccessKeyLastUsed.Region) != "ap-northeast-1" {
		t.Errorf("last used: %+v", lu.AccessKeyLastUsed)
	}
	cfg.Region = "ap-northeast-1"
	ev, err := cloudtrail.NewFromConfig(cfg).LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev.Events {
		if aws.ToString(e.EventName) == "Publish" {
			t.Errorf("CloudTrail shows a Publish: %+v", e)
		}
	}
}
