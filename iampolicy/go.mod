module github.com/keyrotator/keyrotator/iampolicy

go 1.26.8
