environment        = "staging"
vpc_cidr_block     = "10.40.0.0/16"
single_nat_gateway = true
node_min_size      = 2
node_max_size      = 4
rds_instance_class = "db.t4g.medium"
rds_multi_az       = false
github_environment = "staging"
