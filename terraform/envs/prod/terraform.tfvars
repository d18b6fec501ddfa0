environment        = "prod"
vpc_cidr_block     = "10.50.0.0/16"
single_nat_gateway = false
node_min_size      = 3
node_max_size      = 9
rds_instance_class = "db.m6g.large"
rds_multi_az       = true
github_environment = "production"
