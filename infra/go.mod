module github.com/keyrotator/keyrotator/infra

go 1.26.8

require (
	github.com/santhosh-tekuri/jsonschema/v6 v6.0.2 // indirect
	golang.org/x/text v0.14.0 // indirect
)

require github.com/keyrotator/keyrotator/functions v0.0.0

replace github.com/keyrotator/keyrotator/functions => ../functions
