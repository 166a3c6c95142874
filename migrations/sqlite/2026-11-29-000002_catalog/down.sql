DROP TABLE service_raci;
DROP TABLE service_tags;
DROP TABLE service_leika_keys;
DROP TABLE services;
DROP TABLE organizations;
