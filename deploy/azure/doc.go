// Package azure holds no code: it is the Azure Resource Manager deployment
// of a baton pair (azuredeploy.json, run with one `az deployment group
// create`; README.md, "Deploy on Azure") and the files it is made from
// (cloud-init.yaml, baton.toml, tls-acme.toml, copied into the template's
// variables). Its tests check all of it offline: they evaluate the
// template's expressions for several parameter sets (arm_test.go), render
// each VM's cloud-init and baton.toml, validate them with `cloud-init
// schema` and `baton check-config -offline`, and cross-check the load
// balancer's probe and rules, the network security group, the identity and
// its role against the generated configuration.
package azure
