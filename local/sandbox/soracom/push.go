package soracom

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/keyrotator/keyrotator/local/sandbox/iotdata"
)

// The namespaces whose configuration points at an AWS credential and whose
// service delivers device data into AWS with it.
const (
	nsFunnel = "SoracomFunnel"
	nsFunk   = "SoracomFunk"
)

// sampleIMSI stands in for the device that sent the data (Funnel topics may
// name it with #{imsi}).
const sampleIMSI = "001010000000001"

// pushTarget is one push of a tick: one per distinct credential in use, on
// behalf of every group that references it.
type pushTarget struct {
	credID string
	keyID  string
	secret string
	dest   destination
	groups []string
}

// destination is where a push goes, read from the first group (by id) that
// references the credential.
type destination struct {
	service  string // iotdata.SigningName or "lambda"
	region   string
	topic    string // iotdata
	function string // lambda: a name or an ARN
}

// pushLoop is the operator's one loop: each tick it pushes once per
// credential that an enabled group uses, not once per group, so 250 groups
// sharing one key are one call a tick.
func (o *Operator) pushLoop(ctx context.Context) {
	tick := time.NewTicker(o.svc.pushEach)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		o.pushOnce(ctx)
	}
}

func (o *Operator) pushOnce(ctx context.Context) {
	base := o.svc.srv.URL()
	if base == "" { // the sandbox is not serving yet
		return
	}
	targets, broken := o.plan()
	for _, t := range targets {
		note, err := o.push(ctx, base, t)
		if ctx.Err() != nil {
			return
		}
		o.settle(t, note, err)
	}
	if len(broken) > 0 {
		now := o.now()
		o.mu.Lock()
		for id, b := range broken {
			if g, ok := o.groups[id]; ok {
				g.push.Failed++
				g.push.LastCredentialID, g.push.LastError, g.push.LastKeyID, g.push.LastNote, g.push.LastAt = b.credID, b.err, "", "", now
			}
		}
		o.mu.Unlock()
	}
}

// brokenRef is a group that points at a credential the store does not have:
// SORACOM cannot deliver its data, and the group shows it.
type brokenRef struct{ credID, err string }

// plan reads, under the lock, what this tick pushes.
func (o *Operator) plan() ([]pushTarget, map[string]brokenRef) {
	region := o.svc.srv.Region()
	o.mu.Lock()
	defer o.mu.Unlock()
	var targets []pushTarget
	index := map[string]int{}
	broken := map[string]brokenRef{}
	for _, g := range o.sortedGroups() {
		for _, ns := range []string{nsFunnel, nsFunk} {
			conf := g.config[ns]
			if conf == nil || !enabled(conf) {
				continue
			}
			credID := credentialRef(conf["credentialsId"])
			if credID == "" {
				continue
			}
			c, ok := o.creds[credID]
			if !ok {
				broken[g.id] = brokenRef{credID, fmt.Sprintf("%s: credentials %s do not exist", ns, credID)}
				continue
			}
			if c.in.Type != "aws-credentials" {
				continue // an IAM role or a non-AWS credential: no access key of ours in play
			}
			i, seen := index[credID]
			if !seen {
				keyID, _ := c.in.Credentials["accessKeyId"].(string)
				secret, _ := c.in.Credentials["secretAccessKey"].(string)
				index[credID] = len(targets)
				targets = append(targets, pushTarget{credID: credID, keyID: keyID, secret: secret,
					dest: destinationOf(ns, conf, g.id, region)})
				i = len(targets) - 1
			}
			if t := &targets[i]; len(t.groups) == 0 || t.groups[len(t.groups)-1] != g.id {
				t.groups = append(t.groups, g.id)
			}
		}
	}
	return targets, broken
}

// enabled reads a namespace's "enabled" key: absent means enabled.
func enabled(conf map[string]any) bool {
	v, ok := conf["enabled"]
	if !ok {
		return true
	}
	b, isBool := v.(bool)
	return isBool && b
}

// credentialRef reads a credentialsId as groups store it: a plain string
// (Funnel, as a Terraform provider writes it) or {"$credentialsId": id}
// (Funk, Beam); api-facts §2.4 says both are seen.
func credentialRef(v any) string {
	switch r := v.(type) {
	case string:
		return r
	case map[string]any:
		s, _ := r["$credentialsId"].(string)
		return s
	}
	return ""
}

// references says whether an enabled Funnel or Funk namespace of g points
// at credID; the caller holds o.mu.
func (g *group) references(credID string) bool {
	for _, ns := range []string{nsFunnel, nsFunk} {
		if conf := g.config[ns]; conf != nil && enabled(conf) && credentialRef(conf["credentialsId"]) == credID {
			return true
		}
	}
	return false
}

// destinationOf reads where a namespace delivers. Funnel's AWS IoT
// destination (resourceUrl https://<id>.iot.<region>.amazonaws.com/<topic>)
// is an IoT publish; Funk's Lambda (resourceUrl: the function ARN) is a
// Lambda invoke. The sandbox has no Kinesis or Firehose: any other Funnel
// destination is stood in for by an IoT publish, so the key is still used
// and its last-used evidence still appears.
func destinationOf(ns string, conf map[string]any, groupID, region string) destination {
	dest, _ := conf["destination"].(map[string]any)
	service, _ := dest["service"].(string)
	resource, _ := dest["resourceUrl"].(string)
	if ns == nsFunk {
		d := destination{service: "lambda", region: region, function: resource}
		if parts := strings.Split(resource, ":"); len(parts) >= 7 && parts[0] == "arn" && parts[2] == "lambda" {
			d.region = parts[3]
		}
		if d.function == "" {
			d.function = "soracom-funk-" + groupID
		}
		return d
	}
	d := destination{service: iotdata.SigningName, region: region, topic: "soracom/funnel/" + groupID}
	if u, err := url.Parse(resource); err == nil && service == "aws-iot" {
		if _, rest, ok := strings.Cut(u.Hostname(), ".iot."); ok {
			if r, _, ok := strings.Cut(rest, "."); ok && r != "" {
				d.region = r
			}
		}
		if t := strings.Trim(u.Path, "/"); t != "" {
			d.topic = strings.ReplaceAll(t, "#{imsi}", sampleIMSI)
		}
	}
	return d
}

// push makes one delivery with the credential's key.
func (o *Operator) push(ctx context.Context, base string, t pushTarget) (note string, err error) {
	if t.keyID == "" || t.secret == "" {
		return "", fmt.Errorf("credentials %s hold no access key", t.credID)
	}
	payload, err := json.Marshal(map[string]any{"operatorId": o.id, "imsi": sampleIMSI,
		"credentialsId": t.credID, "timestamp": o.now().UnixMilli(), "payload": map[string]any{"temperature": 21.5}})
	if err != nil {
		return "", fmt.Errorf("encode payload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if t.dest.service == "lambda" {
		return o.invoke(ctx, base, t, payload)
	}
	return "", o.publish(ctx, base, t, payload)
}

// publish is an AWS IoT data-plane Publish (POST /topics/{topic}), signed
// by hand with the SDK's SigV4 signer under the signing name "iotdata":
// the SDK's iotdataplane client is not served at a version that matches
// this module's aws-sdk-go-v2.
func (o *Operator) publish(ctx context.Context, base string, t pushTarget, payload []byte) error {
	u := base + "/topics/" + url.PathEscape(t.dest.topic) + "?qos=0"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("iotdata Publish to %s: %w", t.dest.topic, err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	sum := sha256.Sum256(payload)
	creds := aws.Credentials{AccessKeyID: t.keyID, SecretAccessKey: t.secret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), iotdata.SigningName, t.dest.region, time.Now()); err != nil {
		return fmt.Errorf("iotdata Publish to %s with %s: sign: %w", t.dest.topic, t.keyID, err)
	}
	resp, err := o.svc.hc.Do(req)
	if err != nil {
		return fmt.Errorf("iotdata Publish to %s with %s: %w", t.dest.topic, t.keyID, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("iotdata Publish to %s with %s: %d %s: %s", t.dest.topic, t.keyID, resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), e.Message)
	}
	return nil
}

// invoke is a Lambda Invoke of type DryRun: Lambda authenticates the key
// (so last-used shows it) and checks the function, but runs nothing — the
// sandbox's functions are keyrotator's own, which must not run on device
// data, and a child process a tick would load the machine. A function that
// does not exist still authenticated the key: the push counts as delivered,
// with a note.
func (o *Operator) invoke(ctx context.Context, base string, t pushTarget, payload []byte) (string, error) {
	c := lambda.New(lambda.Options{
		Region: t.dest.region, BaseEndpoint: aws.String(base), RetryMaxAttempts: 1, HTTPClient: o.svc.hc,
		Credentials: credentials.NewStaticCredentialsProvider(t.keyID, t.secret, ""),
	})
	_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(t.dest.function),
		InvocationType: lambdatypes.InvocationTypeDryRun, Payload: payload})
	var nf *lambdatypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fmt.Sprintf("function %s does not exist: the key authenticated, nothing ran", t.dest.function), nil
	}
	if err != nil {
		return "", fmt.Errorf("lambda Invoke %s with %s: %w", t.dest.function, t.keyID, err)
	}
	return "", nil
}

// settle records a push's outcome on every group it was for, and on
// success the credential's lastUsedDateTime.
func (o *Operator) settle(t pushTarget, note string, err error) {
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range t.groups {
		g, ok := o.groups[id]
		if !ok || !g.references(t.credID) {
			continue // repointed or deleted while the push was on its way: not its outcome
		}
		p := &g.push
		p.LastKeyID, p.LastCredentialID, p.LastService, p.LastNote, p.LastAt = t.keyID, t.credID, t.dest.service, note, now
		if err != nil {
			p.Failed++
			p.LastError = err.Error()
		} else {
			p.Sent++
			p.LastError = "" // the last attempt's, so a group that recovered says so
		}
	}
	if c, ok := o.creds[t.credID]; ok && err == nil {
		c.lastUsed = now
	}
	if err != nil {
		o.svc.log.Debug("soracom push failed", "operator", o.id, "credentialsId", t.credID, "accessKeyId", t.keyID, "err", err)
	}
}
