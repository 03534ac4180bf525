//! What BI tools send when they connect and browse, replayed over the
//! extended protocol as their JDBC driver sends it (pgjdbc 42.7, which
//! DBeaver and Metabase both use): the texts are the clients' own (from
//! pgjdbc's `PgDatabaseMetaData`/`TypeInfoCache`, DBeaver's PostgreSQL
//! plugin and a capture of Metabase 0.62 syncing), with parameters bound
//! with the types the driver binds (`varchar` text, `int4`/`int8` binary).
//! Every statement must run, and what they list must be what the login may
//! see: the granted tables and their declared columns, nothing else.

use std::collections::BTreeSet;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row};

use super::common::{answer, connect, serve_trusted, testdata};

/// One parameter as the driver binds it.
#[derive(Clone, Copy)]
enum Param {
    /// `setString`: varchar, text format.
    Text(&'static str),
    /// `setInt`: int4, binary.
    Int4(i32),
    /// `setLong`: int8, binary.
    Int8(i64),
    /// `setLong` of the `public` namespace's oid.
    SchemaOid,
    /// `setLong` of the `customers` table's oid.
    TableOid,
}

/// One statement a client sends.
struct Statement {
    client: &'static str,
    what: &'static str,
    sql: &'static str,
    params: &'static [Param],
}

const STATEMENTS: &[Statement] = &[
    Statement {
        client: "pgjdbc",
        what: "start-up SET application_name",
        sql: r#"SET application_name = 'PostgreSQL JDBC Driver'"#,
        params: &[],
    },
    Statement {
        client: "pgjdbc",
        what: "getCatalog",
        sql: r#"select current_catalog"#,
        params: &[],
    },
    Statement {
        client: "pgjdbc",
        what: "getTransactionIsolation",
        sql: r#"SHOW TRANSACTION ISOLATION LEVEL"#,
        params: &[],
    },
    Statement {
        client: "pgjdbc",
        what: "setTransactionIsolation",
        sql: r#"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"#,
        params: &[],
    },
    Statement {
        client: "pgjdbc",
        what: "getSchemas",
        sql: r#"SELECT nspname AS "TABLE_SCHEM", current_database() AS "TABLE_CATALOG" FROM pg_catalog.pg_namespace  WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = (pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_'  OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))  ORDER BY "TABLE_SCHEM""#,
        params: &[],
    },
    Statement {
        client: "pgjdbc",
        what: "getTables",
        sql: r#"SELECT current_database() AS "TABLE_CAT", n.nspname AS "TABLE_SCHEM", c.relname AS "TABLE_NAME",  CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema'  WHEN true THEN CASE  WHEN n.nspname = 'pg_catalog' OR n.nspname = 'information_schema' THEN CASE c.relkind   WHEN 'r' THEN 'SYSTEM TABLE'   WHEN 'v' THEN 'SYSTEM VIEW'   WHEN 'i' THEN 'SYSTEM INDEX'   ELSE NULL   END  WHEN n.nspname = 'pg_toast' THEN CASE c.relkind   WHEN 'r' THEN 'SYSTEM TOAST TABLE'   WHEN 'i' THEN 'SYSTEM TOAST INDEX'   ELSE NULL   END  ELSE CASE c.relkind   WHEN 'r' THEN 'TEMPORARY TABLE'   WHEN 'p' THEN 'TEMPORARY TABLE'   WHEN 'i' THEN 'TEMPORARY INDEX'   WHEN 'S' THEN 'TEMPORARY SEQUENCE'   WHEN 'v' THEN 'TEMPORARY VIEW'   ELSE NULL   END  END  WHEN false THEN CASE c.relkind  WHEN 'r' THEN 'TABLE'  WHEN 'p' THEN 'PARTITIONED TABLE'  WHEN 'i' THEN 'INDEX'  WHEN 'P' then 'PARTITIONED INDEX'  WHEN 'S' THEN 'SEQUENCE'  WHEN 'v' THEN 'VIEW'  WHEN 'c' THEN 'TYPE'  WHEN 'f' THEN 'FOREIGN TABLE'  WHEN 'm' THEN 'MATERIALIZED VIEW'  ELSE NULL  END  ELSE NULL  END  AS "TABLE_TYPE", d.description AS "REMARKS",  '' as "TYPE_CAT", '' as "TYPE_SCHEM", '' as "TYPE_NAME", '' AS "SELF_REFERENCING_COL_NAME", '' AS "REF_GENERATION"  FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c  LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0  and d.classoid = 'pg_class'::regclass)  WHERE c.relnamespace = n.oid  AND n.nspname LIKE $1 AND c.relname LIKE $2 AND (false  OR ( c.relkind = 'r' AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' )  OR ( c.relkind = 'v' AND n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema' ) )  ORDER BY "TABLE_TYPE","TABLE_SCHEM","TABLE_NAME""#,
        params: &[Param::Text("public"), Param::Text("%")],
    },
    Statement {
        client: "pgjdbc",
        what: "getColumns",
        sql: r#"SELECT * FROM (SELECT current_database() AS current_database, n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull  OR (t.typtype = 'd' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, nullif(a.attidentity, '') as attidentity,nullif(a.attgenerated, '') as attgenerated,pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,t.typtype  FROM pg_catalog.pg_namespace n  JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid)  JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid)  JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid)  LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum)  LEFT JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)  LEFT JOIN pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class')  LEFT JOIN pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog')  WHERE c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped  AND n.nspname LIKE $1 AND c.relname LIKE $2) c WHERE true  AND attname LIKE $3 ORDER BY nspname,c.relname,attnum"#,
        params: &[
            Param::Text("public"),
            Param::Text("customers"),
            Param::Text("%"),
        ],
    },
    Statement {
        client: "pgjdbc",
        what: "getColumns without a column pattern",
        sql: r#"SELECT * FROM (SELECT current_database() AS current_database, n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull  OR (t.typtype = 'd' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, nullif(a.attidentity, '') as attidentity,nullif(a.attgenerated, '') as attgenerated,pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,t.typtype  FROM pg_catalog.pg_namespace n  JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid)  JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid)  JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid)  LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum)  LEFT JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)  LEFT JOIN pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class')  LEFT JOIN pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog')  WHERE c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped  AND n.nspname LIKE $1 AND c.relname LIKE $2) c WHERE true  ORDER BY nspname,c.relname,attnum"#,
        params: &[Param::Text("public"), Param::Text("customers")],
    },
    Statement {
        client: "pgjdbc",
        what: "getPrimaryKeys (42.7.8-12)",
        sql: r#"SELECT        result.TABLE_CAT AS "TABLE_CAT",        result.TABLE_SCHEM AS "TABLE_SCHEM",        result.TABLE_NAME AS "TABLE_NAME",        result.COLUMN_NAME AS "COLUMN_NAME",        result.KEY_SEQ AS "KEY_SEQ",        result.PK_NAME AS "PK_NAME"FROM      (SELECT current_database() AS TABLE_CAT, n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,   (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME,   information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM, i.indnkeyatts as KEY_COUNT FROM pg_catalog.pg_class ct   JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)   JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN pg_catalog.pg_index i ON ( a.attrelid = i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE true  AND n.nspname = $1 AND ct.relname = $2 AND i.indisprimary  ) result where  result.A_ATTNUM = (result.KEYS).x AND result.KEY_SEQ <= KEY_COUNT  ORDER BY result.table_name, result.pk_name, result.key_seq"#,
        params: &[Param::Text("public"), Param::Text("customers")],
    },
    Statement {
        client: "pgjdbc",
        what: "getPrimaryKeys (42.7.13)",
        sql: r#"SELECT        result.TABLE_CAT AS "TABLE_CAT",        result.TABLE_SCHEM AS "TABLE_SCHEM",        result.TABLE_NAME AS "TABLE_NAME",        result.COLUMN_NAME AS "COLUMN_NAME",        result.KEY_SEQ AS "KEY_SEQ",        result.PK_NAME AS "PK_NAME"FROM      (SELECT current_database() AS TABLE_CAT, n.nspname AS TABLE_SCHEM,   ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,   (information_schema._pg_expandarray(con.conkey)).n AS KEY_SEQ, con.conname AS PK_NAME,   information_schema._pg_expandarray(con.conkey) AS KEYS, a.attnum AS A_ATTNUM FROM pg_catalog.pg_constraint con   JOIN pg_catalog.pg_class ct ON (con.conrelid = ct.oid)   JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN pg_catalog.pg_attribute a ON (a.attrelid = ct.oid) WHERE con.contype = 'p'  AND n.nspname = $1 AND ct.relname = $2 ) result where  result.A_ATTNUM = (result.KEYS).x  ORDER BY result.table_name, result.pk_name, result.key_seq"#,
        params: &[Param::Text("public"), Param::Text("customers")],
    },
    Statement {
        client: "pgjdbc",
        what: "TypeInfoCache.getPGType",
        sql: r#"SELECT n.nspname = ANY(current_schemas(true)), n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid WHERE t.oid = $1"#,
        params: &[Param::Int4(1034)],
    },
    Statement {
        client: "pgjdbc",
        what: "TypeInfoCache.getSQLType",
        sql: r#"SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid   FROM pg_catalog.pg_type   LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r           from pg_namespace as ns           join ( select s.r, (current_schemas(false))[s.r] as nspname                    from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r          using ( nspname )        ) as sp     ON sp.nspoid = typnamespace  WHERE pg_type.oid = $1  ORDER BY sp.r, pg_type.oid DESC"#,
        params: &[Param::Int8(1034)],
    },
    Statement {
        client: "pgjdbc",
        what: "getSQLKeywords",
        sql: r#"select string_agg(word, ',') from pg_catalog.pg_get_keywords() where word <> ALL ('{a,abs,absolute,action,ada,add,admin,after,all,allocate,alter,always,and,any,are,array,as,asc,asensitive,assertion,assignment,asymmetric,at,atomic,attribute,attributes,authorization,avg,before,begin,bernoulli,between,bigint,binary,blob,boolean,both,breadth,by,c,call,called,cardinality,cascade,cascaded,case,cast,catalog,catalog_name,ceil,ceiling,chain,char,char_length,character,character_length,character_set_catalog,character_set_name,character_set_schema,characteristics,characters,check,checked,class_origin,clob,close,coalesce,cobol,code_units,collate,collation,collation_catalog,collation_name,collation_schema,collect,column,column_name,command_function,command_function_code,commit,committed,condition,condition_number,connect,connection_name,constraint,constraint_catalog,constraint_name,constraint_schema,constraints,constructors,contains,continue,convert,corr,corresponding,count,covar_pop,covar_samp,create,cross,cube,cume_dist,current,current_collation,current_date,current_default_transform_group,current_path,current_role,current_time,current_timestamp,current_transform_group_for_type,current_user,cursor,cursor_name,cycle,data,date,datetime_interval_code,datetime_interval_precision,day,deallocate,dec,decimal,declare,default,defaults,deferrable,deferred,defined,definer,degree,delete,dense_rank,depth,deref,derived,desc,describe,descriptor,deterministic,diagnostics,disconnect,dispatch,distinct,domain,double,drop,dynamic,dynamic_function,dynamic_function_code,each,element,else,end,end-exec,equals,escape,every,except,exception,exclude,excluding,exec,execute,exists,exp,external,extract,false,fetch,filter,final,first,float,floor,following,for,foreign,fortran,found,free,from,full,function,fusion,g,general,get,global,go,goto,grant,granted,group,grouping,having,hierarchy,hold,hour,identity,immediate,implementation,in,including,increment,indicator,initially,inner,inout,input,insensitive,insert,instance,instantiable,int,integer,intersect,intersection,interval,into,invoker,is,isolation,join,k,key,key_member,key_type,language,large,last,lateral,leading,left,length,level,like,ln,local,localtime,localtimestamp,locator,lower,m,map,match,matched,max,maxvalue,member,merge,message_length,message_octet_length,message_text,method,min,minute,minvalue,mod,modifies,module,month,more,multiset,mumps,name,names,national,natural,nchar,nclob,nesting,new,next,no,none,normalize,normalized,not,"null",nullable,nullif,nulls,number,numeric,object,octet_length,octets,of,old,on,only,open,option,options,or,order,ordering,ordinality,others,out,outer,output,over,overlaps,overlay,overriding,pad,parameter,parameter_mode,parameter_name,parameter_ordinal_position,parameter_specific_catalog,parameter_specific_name,parameter_specific_schema,partial,partition,pascal,path,percent_rank,percentile_cont,percentile_disc,placing,pli,position,power,preceding,precision,prepare,preserve,primary,prior,privileges,procedure,public,range,rank,read,reads,real,recursive,ref,references,referencing,regr_avgx,regr_avgy,regr_count,regr_intercept,regr_r2,regr_slope,regr_sxx,regr_sxy,regr_syy,relative,release,repeatable,restart,result,return,returned_cardinality,returned_length,returned_octet_length,returned_sqlstate,returns,revoke,right,role,rollback,rollup,routine,routine_catalog,routine_name,routine_schema,row,row_count,row_number,rows,savepoint,scale,schema,schema_name,scope_catalog,scope_name,scope_schema,scroll,search,second,section,security,select,self,sensitive,sequence,serializable,server_name,session,session_user,set,sets,similar,simple,size,smallint,some,source,space,specific,specific_name,specifictype,sql,sqlexception,sqlstate,sqlwarning,sqrt,start,state,statement,static,stddev_pop,stddev_samp,structure,style,subclass_origin,submultiset,substring,sum,symmetric,system,system_user,table,table_name,tablesample,temporary,then,ties,time,timestamp,timezone_hour,timezone_minute,to,top_level_count,trailing,transaction,transaction_active,transactions_committed,transactions_rolled_back,transform,transforms,translate,translation,treat,trigger,trigger_catalog,trigger_name,trigger_schema,trim,true,type,uescape,unbounded,uncommitted,under,union,unique,unknown,unnamed,unnest,update,upper,usage,user,user_defined_type_catalog,user_defined_type_code,user_defined_type_name,user_defined_type_schema,using,value,values,var_pop,var_samp,varchar,varying,view,when,whenever,where,width_bucket,window,with,within,without,work,write,year,zone}'::text[])"#,
        params: &[],
    },
    Statement {
        client: "pgjdbc",
        what: "fetchFieldMetaData",
        sql: r#"SELECT c.oid, a.attnum, a.attname, c.relname, n.nspname, a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), a.attidentity != '' OR pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE '%nextval(%' FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON (c.relnamespace = n.oid) JOIN pg_catalog.pg_attribute a ON (c.oid = a.attrelid) JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) LEFT JOIN pg_catalog.pg_attrdef d ON (d.adrelid = a.attrelid AND d.adnum = a.attnum) JOIN (SELECT {TABLE_OID} AS oid , 1 AS attnum UNION ALL SELECT {TABLE_OID}, 2 UNION ALL SELECT {TABLE_OID}, 3) vals ON (c.oid = vals.oid AND a.attnum = vals.attnum) where c.oid in ({TABLE_OID})"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "SET application_name",
        sql: r#"SET application_name = 'DBeaver 24.2.4 - Main <veil>'"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "current schema and user",
        sql: r#"SELECT current_schema(),session_user"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "schemas",
        sql: r#"SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
 ORDER BY nspname"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "SHOW search_path",
        sql: r#"SHOW search_path"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "database",
        sql: r#"SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=$1"#,
        params: &[Param::Text("analytics")],
    },
    Statement {
        client: "DBeaver",
        what: "setting",
        sql: r#"select * from pg_catalog.pg_settings where name=$1"#,
        params: &[Param::Text("standard_conforming_strings")],
    },
    Statement {
        client: "DBeaver",
        what: "version",
        sql: r#"SELECT version()"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "pg_enum probe",
        sql: r#"SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "pg_class probe",
        sql: r#"SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "data types",
        sql: r#"SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem 
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.typname IS NOT NULL
AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "enum values",
        sql: r#"SELECT * FROM pg_catalog.pg_enum"#,
        params: &[],
    },
    Statement {
        client: "DBeaver",
        what: "tables of a schema",
        sql: r#"SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c')"#,
        params: &[Param::SchemaOid],
    },
    Statement {
        client: "DBeaver",
        what: "columns of a table",
        sql: r#"SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=$1
ORDER BY a.attnum"#,
        params: &[Param::TableOid],
    },
    Statement {
        client: "DBeaver",
        what: "constraints of a table",
        sql: r#"SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE c.conrelid=$1
ORDER BY c.oid"#,
        params: &[Param::TableOid],
    },
    Statement {
        client: "DBeaver",
        what: "data tab",
        sql: r#"SELECT x.* FROM public.customers x"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "SET application_name",
        sql: r#"SET application_name = 'Metabase v0.62.1.5 [d4fe74c4-96c3-4812-b3ae-35e513752b13]'"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "connection test",
        sql: r#"SELECT 1"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "isolation level",
        sql: r#"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "isolation level restored",
        sql: r#"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "table privileges",
        sql: r#"with table_privileges as (
 select
   NULL as role,
   t.schemaname as schema,
   t.objectname as table,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'update') as update,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'select') as select,
   pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'insert') as insert,
   pg_catalog.has_table_privilege(     current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'delete') as delete
 from (
   select schemaname, tablename as objectname from pg_catalog.pg_tables
   union
   select schemaname, viewname as objectname from pg_catalog.pg_views
   union
   select schemaname, matviewname as objectname from pg_catalog.pg_matviews
 ) t
 where t.schemaname !~ '^pg_'
   and t.schemaname <> 'information_schema'
   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')
)
select t.*
from table_privileges t"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "tables",
        sql: r#"SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description", NULLIF("stat"."n_live_tup", $1) AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = $2) AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ $3) AND ("n"."nspname" <> $4) AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ($5)) ORDER BY "type" ASC, "schema" ASC, "name" ASC"#,
        params: &[
            Param::Int8(0),
            Param::Int8(0),
            Param::Text("^pg_"),
            Param::Text("information_schema"),
            Param::Text("public"),
        ],
    },
    Statement {
        client: "Metabase",
        what: "show timezone",
        sql: r#"show timezone"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "enum types",
        sql: r#"SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "describe fields",
        sql: r#"SELECT "c"."column_name" AS "name", CASE WHEN "c"."udt_schema" IN ('public', 'pg_catalog') THEN FORMAT('%s', "c"."udt_name") ELSE FORMAT('"%s"."%s"', "c"."udt_schema", "c"."udt_name") END AS "database-type", "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", "c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?", COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment", (("column_default" IS NULL) OR (LOWER("column_default") = 'null')) AND ("is_nullable" = 'NO') AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO')) AS "database-required", "column_default" AS "database-default", (("column_default" IS NOT NULL) AND ("column_default" LIKE '%nextval(%')) OR ("is_identity" <> 'NO') AS "database-is-auto-increment", "is_generated" = $1 AS "database-is-generated", "is_nullable" = 'YES' AS "database-is-nullable" FROM "information_schema"."columns" AS "c" LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name" FROM "information_schema"."table_constraints" AS "tc" INNER JOIN "information_schema"."key_column_usage" AS "kc" ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema") AND ("tc"."table_name" = "kc"."table_name") WHERE "tc"."constraint_type" = 'PRIMARY KEY') AS "pk" ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name") AND ("c"."column_name" = "pk"."column_name") WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND ("c"."table_schema" IN ($2)) UNION ALL SELECT "pa"."attname" AS "name", CASE WHEN "ptn"."nspname" IN ('public', 'pg_catalog') THEN FORMAT('%s', "pt"."typname") ELSE FORMAT('"%s"."%s"', "ptn"."nspname", "pt"."typname") END AS "database-type", "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema", "pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment", FALSE AS "database-required", NULL AS "database-default", FALSE AS "database-is-auto-increment", FALSE AS "database-is-generated", FALSE AS "database-is-nullable" FROM "pg_catalog"."pg_class" AS "pc" INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace" INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid" INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid" INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace" WHERE ("pc"."relkind" = 'm') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ($3)) ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC"#,
        params: &[
            Param::Text("ALWAYS"),
            Param::Text("public"),
            Param::Text("public"),
        ],
    },
    Statement {
        client: "Metabase",
        what: "foreign keys",
        sql: r#"SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name", "fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema", "pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name" FROM "pg_constraint" AS "c" INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid" INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid" INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid" INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid" INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid" INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid" WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND ("c"."contype" = 'f'::char) AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey)) AND ("fk_ns"."nspname" IN ($1)) ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC"#,
        params: &[Param::Text("public")],
    },
    Statement {
        client: "Metabase",
        what: "field values sample",
        sql: r#"-- Metabase
SELECT SUBSTRING("public"."customers"."name", 1, 1234) AS "substring4476", SUBSTRING("public"."customers"."email", 1, 1234) AS "substring4477" FROM "public"."customers" LIMIT 10000"#,
        params: &[],
    },
    Statement {
        client: "Metabase",
        what: "a question",
        sql: r#"-- Metabase:: userID: 1 queryType: MBQL queryHash: a54de39466cbf3e82ff09c5a9a2bccf1f922bf9fd59b2717c1ad5e09a1c0bfbc
SELECT COUNT(*) AS "count" FROM "public"."customers""#,
        params: &[],
    },
];

/// The oids of the `public` namespace and of `customers` in this login's
/// catalog.
async fn oids(client: &Client) -> (i64, i64) {
    let oid = |sql: &'static str| async move {
        let rows = client.query(sql, &[]).await.expect(sql);
        rows.first().map(|r| r.get::<_, i64>(0)).expect(sql)
    };
    (
        oid("SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'public'").await,
        oid("SELECT oid FROM pg_catalog.pg_class WHERE relname = 'customers'").await,
    )
}

/// Runs `s` over the extended protocol with its parameters bound as the
/// driver binds them.
async fn run(client: &Client, s: &Statement, schema: i64, table: i64) -> Result<Vec<Row>, String> {
    let sql = s.sql.replace("{TABLE_OID}", &table.to_string());
    let mut types = Vec::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    for p in s.params {
        match *p {
            Param::Text(v) => {
                types.push(Type::VARCHAR);
                values.push(Box::new(v.to_string()));
            }
            Param::Int4(v) => {
                types.push(Type::INT4);
                values.push(Box::new(v));
            }
            Param::Int8(v) => {
                types.push(Type::INT8);
                values.push(Box::new(v));
            }
            Param::SchemaOid | Param::TableOid => {
                types.push(Type::INT8);
                values.push(Box::new(if matches!(p, Param::SchemaOid) {
                    schema
                } else {
                    table
                }));
            }
        }
    }
    let refs: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let statement = client
        .prepare_typed(&sql, &types)
        .await
        .map_err(|e| message(&e))?;
    client
        .query(&statement, &refs)
        .await
        .map_err(|e| message(&e))
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error().map_or_else(
        || e.to_string(),
        |d| format!("{}: {}", d.code().code(), d.message()),
    )
}

/// The text values of column `name` in `rows`.
fn column(rows: &[Row], name: &str) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|r| r.try_get::<_, Option<String>>(name).ok().flatten())
        .collect()
}

/// The statement described as `what`.
fn statement(what: &str) -> &'static Statement {
    STATEMENTS.iter().find(|s| s.what == what).expect(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbeaver_metabase_and_pgjdbc_discovery_runs_and_lists_only_granted_tables() {
    let addr = serve_trusted(&testdata("sample")).await;
    let bob = connect(addr, "BOB").await;
    let (schema, table) = oids(&bob).await;
    let mut failures = Vec::new();
    for s in STATEMENTS {
        if let Err(e) = run(&bob, s, schema, table).await {
            failures.push(format!("{} {}: {e}", s.client, s.what));
        }
    }
    // Connection checks (`Connection.isValid()`) send an empty query.
    if let Err(e) = bob.simple_query("").await {
        failures.push(format!("pgjdbc isValid (empty query): {}", message(&e)));
    }
    assert!(
        failures.is_empty(),
        "{} of {} client statements failed:\n{}",
        failures.len(),
        STATEMENTS.len() + 1,
        failures.join("\n")
    );

    // What they list is what BOB may read in `public`.
    let granted: BTreeSet<String> = answer(
        &bob,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .await
    .unwrap()
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect();
    assert!(granted.contains("customers"), "{granted:?}");
    let listed = |what, col| {
        let s = statement(what);
        let bob = &bob;
        async move { column(&run(bob, s, schema, table).await.unwrap(), col) }
    };
    assert_eq!(listed("getTables", "TABLE_NAME").await, granted);
    assert_eq!(listed("tables of a schema", "relname").await, granted);
    assert_eq!(listed("tables", "name").await, granted);
    let declared: BTreeSet<String> = answer(
        &bob,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'",
    )
    .await
    .unwrap()
    .into_iter()
    .filter_map(|r| r.into_iter().next().flatten())
    .collect();
    assert!(
        declared.contains("ssn"),
        "masked columns are listed: {declared:?}"
    );
    assert_eq!(listed("columns of a table", "attname").await, declared);
    assert_eq!(listed("getColumns", "attname").await, declared);

    // ERIN is granted no table in `public`: the tools list none there.
    let erin = connect(addr, "ERIN").await;
    let none = run(&erin, statement("getTables"), schema, table)
        .await
        .unwrap();
    assert!(
        column(&none, "TABLE_NAME").is_empty(),
        "ERIN sees public tables"
    );
}
