"""Writes the small TLC-layout fixture files in this folder (run from the repository root)."""

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

out = "tests/data/trips/"
h15 = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,pickup_longitude,pickup_latitude,RateCodeID,store_and_fwd_flag,dropoff_longitude,dropoff_latitude,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount"
rows15 = [
    # clean
    "2,2015-01-15 19:05:39,2015-01-15 19:23:42,1,1.59,-73.993896484375,40.750110626220703,1,N,-73.974784851074219,40.750617980957031,1,12,1,0.5,3.25,0,0.3,17.05",
    "1,2015-01-10 20:33:38,2015-01-10 20:53:28,1,3.30,-74.00164794921875,40.7242431640625,1,N,-73.994415283203125,40.759109497070313,1,14.5,0.5,0.5,2,0,0.3,17.8",
    "1,2015-01-10 20:33:38,2015-01-10 20:43:41,1,1.80,-73.963340759277344,40.802787780761719,1,N,-73.951820373535156,40.824413299560547,2,9.5,0.5,0.5,0,0,0.3,10.8",
    "1,2015-01-10 20:33:39,2015-01-10 20:35:31,1,.50,-74.009086608886719,40.713817596435547,1,N,-74.004325866699219,40.719985961914063,2,3.5,0.5,0.5,0,0,0.3,4.8",
    "1,2015-01-10 20:33:39,2015-01-10 20:52:58,1,3.00,-73.971176147460938,40.762428283691406,1,N,-74.004180908203125,40.742652893066406,2,15,0.5,0.5,0,0,0.3,16.3",
    "1,2015-01-10 20:33:39,2015-01-10 20:53:52,1,9.00,-73.874374389648438,40.7740478515625,1,N,-73.986976623535156,40.758193969726563,1,27,0.5,0.5,6.7,5.33,0.3,40.33",
    "1,2015-01-10 20:33:39,2015-01-10 20:58:31,1,2.20,-73.9832763671875,40.726009368896484,1,N,-73.992469787597656,40.7496337890625,2,14,0.5,0.5,0,0,0.3,15.3",
    # zero coordinates (2) and a missing one (1)
    "2,2015-01-15 19:05:40,2015-01-15 19:10:10,1,0.90,0,40.750110626220703,1,N,-73.974784851074219,40.750617980957031,2,6,1,0.5,0,0,0.3,7.8",
    "2,2015-01-15 19:05:41,2015-01-15 19:12:00,5,1.10,-73.993896484375,40.750110626220703,1,N,0,0,2,6.5,1,0.5,0,0,0.3,8.3",
    "2,2015-01-15 19:05:42,2015-01-15 19:15:00,1,1.30,-73.993896484375,,1,N,-73.974784851074219,40.750617980957031,2,8,1,0.5,0,0,0.3,9.8",
    # outside NYC (strict) and drop-off not after pick-up (strict)
    "2,2015-01-15 19:05:43,2015-01-15 19:30:00,1,30.0,-73.993896484375,40.750110626220703,5,N,-73.7,42.1,1,80,0,0.5,0,0,0.3,80.8",
    "2,2015-01-15 19:05:44,2015-01-15 19:05:44,1,0.00,-73.993896484375,40.750110626220703,1,N,-73.993896484375,40.750110626220703,2,2.5,1,0.5,0,0,0.3,4.3",
]
open(out + "yellow_tripdata_2015-01_sample.csv", "w").write(h15 + "\n" + "\n".join(rows15) + "\n")
h16 = h15.replace("RateCodeID", "RatecodeID")
rows16 = [
    # a trip and its return trip 2 hours later, picked up 12 m from the drop-off, dropped 15 m from the origin
    "2,2016-02-01 08:00:00,2016-02-01 08:20:00,1,2.1,-73.9772,40.7527,1,N,-74.0113,40.7075,1,10,0,0.5,2,0,0.3,12.8",
    "1,2016-02-01 10:20:00,2016-02-01 10:45:00,1,2.2,-74.01125,40.70760,1,N,-73.97735,40.75260,1,11,0,0.5,2,0,0.3,13.8",
    "1,2016-02-01 09:00:00,2016-02-01 09:10:00,2,1.0,-73.9855,40.7580,1,N,-73.9819,40.7681,1,7,0,0.5,1,0,0.3,8.8",
    "2,2016-02-01 11:00:00,2016-02-01 11:40:00,1,11.0,-73.7822,40.6441,2,N,-73.9840,40.7549,1,52,0,0.5,10,5.54,0.3,68.34",
    "2,2016-02-01 12:00:00,2016-02-01 12:15:00,1,1.6,-73.9566,40.7736,1,N,-73.9754,40.7870,2,9,0,0.5,0,0,0.3,9.8",
    "1,2016-02-01 13:00:00,2016-02-01 13:25:00,3,3.5,-74.0030,40.7233,1,N,-73.9903,40.6928,1,15,0,0.5,3,0,0.3,18.8",
    # missing drop-off time; zero coordinates; outside NYC; drop-off before pick-up
    "2,2016-02-01 14:00:00,,1,1.0,-73.9855,40.7580,1,N,-73.9819,40.7681,2,7,0,0.5,0,0,0.3,7.8",
    "1,2016-02-01 15:00:00,2016-02-01 15:10:00,1,0.0,0,0,1,N,0,0,2,2.5,0,0.5,0,0,0.3,3.3",
    "1,2016-02-01 16:00:00,2016-02-01 17:10:00,1,45.0,-75.1652,39.9526,5,N,-73.9840,40.7549,1,200,0,0.5,0,0,0.3,200.8",
    "2,2016-02-01 18:00:00,2016-02-01 17:50:00,1,1.2,-73.9566,40.7736,1,N,-73.9754,40.7870,2,8,0,0.5,0,0,0.3,8.8",
]
open(out + "yellow_tripdata_2016-02_sample.csv", "w").write(h16 + "\n" + "\n".join(rows16) + "\n")
# 2009 layout, Parquet with real timestamp columns
t = pd.to_datetime
df = pd.DataFrame(
    {
        "vendor_name": ["VTS", "CMT", "VTS", "DDS", "CMT", "VTS", "CMT", "VTS"],
        "Trip_Pickup_DateTime": t(
            [
                "2009-01-04 02:52:00",
                "2009-01-04 03:31:00",
                "2009-01-03 15:43:00",
                "2009-01-01 20:52:58",
                "2009-01-24 16:18:23",
                "2009-01-16 22:35:59",
                "2009-01-21 08:55:57",
                "2009-01-04 05:00:00",
            ]
        ),
        "Trip_Dropoff_DateTime": t(
            [
                "2009-01-04 03:02:00",
                "2009-01-04 03:38:00",
                "2009-01-03 15:57:00",
                "2009-01-01 21:14:00",
                "2009-01-24 16:24:56",
                "2009-01-16 22:43:35",
                "2009-01-21 09:05:42",
                "2009-01-04 05:10:00",
            ]
        ),
        "Passenger_Count": [1, 3, 5, 1, 1, 2, 1, 1],
        "Trip_Distance": [2.63, 4.55, 10.35, 5.0, 0.4, 1.2, 0.4, 1.0],
        "Start_Lon": [
            -73.991957,
            -73.982102,
            -74.002587,
            -73.974267,
            -74.001580,
            0.0,
            -73.980002,
            -73.99,
        ],
        "Start_Lat": [
            40.721567,
            40.736290,
            40.739748,
            40.790955,
            40.719382,
            40.7,
            40.745450,
            np.nan,
        ],
        "Rate_Code": [None] * 8,
        "End_Lon": [
            -73.993803,
            -73.955850,
            -73.869983,
            -73.996558,
            -74.008378,
            -73.98,
            -73.974290,
            -73.98,
        ],
        "End_Lat": [40.695922, 40.768030, 40.770225, 40.731849, 40.720350, 40.75, 40.752800, 40.75],
        "Fare_Amt": [8.9, 12.1, 23.7, 14.9, 3.7, 6.1, 5.7, 6.0],
        "Total_Amt": [9.4, 14.6, 28.44, 18.45, 3.7, 6.6, 6.2, 6.5],
    }
)
pq.write_table(
    pa.Table.from_pandas(df, preserve_index=False),
    out + "yellow_tripdata_2009-01_sample.parquet",
    coerce_timestamps="us",
)
# a 2014-style CSV: leading spaces in the header
h14 = "vendor_id, pickup_datetime, dropoff_datetime, passenger_count, trip_distance, pickup_longitude, pickup_latitude, rate_code, store_and_fwd_flag, dropoff_longitude, dropoff_latitude, payment_type, fare_amount, surcharge, mta_tax, tip_amount, tolls_amount, total_amount"
rows14 = [
    "CMT,2014-01-09 20:45:25,2014-01-09 20:52:31,1,0.7,-73.994770,40.736828,1,N,-73.982227,40.731790,CRD,6.5,0.5,0.5,1.4,0,8.9",
    "CMT,2014-01-09 20:46:12,2014-01-09 20:55:12,1,1.4,-73.982392,40.773382,1,N,-73.960449,40.763995,CRD,8.5,0.5,0.5,1.9,0,11.4",
    "CMT,2014-01-09 20:44:47,2014-01-09 20:59:46,2,2.3,0,0,1,N,0,0,CRD,11.5,0.5,0.5,1.5,0,14",
]
open(out + "yellow_tripdata_2014-01_sample.csv", "w").write(h14 + "\n" + "\n".join(rows14) + "\n")
open(out + "not_a_trip_file.csv", "w").write("station,lat,lon\nA,40.7,-73.9\n")
# a folder whose two CSVs list the columns in different orders (latitude before longitude in the
# second); read with the first file's header, the second file's coordinates would be swapped
h_swapped = "tpep_dropoff_datetime,dropoff_latitude,dropoff_longitude,tpep_pickup_datetime,pickup_latitude,pickup_longitude,VendorID"
rows_swapped = [
    "2015-01-20 09:30:00,40.7580,-73.9855,2015-01-20 09:10:00,40.7128,-74.0060,1",
    "2015-01-20 11:45:00,40.7127,-74.0059,2015-01-20 11:20:00,40.7581,-73.9856,2",
]
os.makedirs(out + "mixed_order", exist_ok=True)
open(out + "mixed_order/yellow_tripdata_2015-01_a.csv", "w").write(
    h15 + "\n" + "\n".join(rows15[:7]) + "\n"
)
open(out + "mixed_order/yellow_tripdata_2015-01_b.csv", "w").write(
    h_swapped + "\n" + "\n".join(rows_swapped) + "\n"
)
# values that do not parse: a word and a decimal comma for coordinates, an impossible timestamp
rows_bad = [
    rows15[0],
    rows15[1].replace("40.7242431640625", "abc"),
    rows15[2].replace("-73.951820373535156", '"-73,95"'),
    rows15[3].replace("2015-01-10 20:35:31", "2015-13-45 25:99:00"),
]
open(out + "yellow_tripdata_2015-01_unparseable.csv", "w").write(
    h15 + "\n" + "\n".join(rows_bad) + "\n"
)
# Parquet with int64 timestamps in seconds, ms, us and ns (what pandas and other writers emit)
pick_s = np.array([1454313600, 1454321400, 1454324400], dtype=np.int64)  # 2016-02-01 08:00 ...
for unit, per_s in (("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)):
    pq.write_table(
        pa.table(
            {
                "tpep_pickup_datetime": pick_s * per_s,
                "tpep_dropoff_datetime": (pick_s + 1200) * per_s,
                "pickup_longitude": [-73.9772, -74.01125, -73.9855],
                "pickup_latitude": [40.7527, 40.70760, 40.7580],
                "dropoff_longitude": [-74.0113, -73.97735, -73.9819],
                "dropoff_latitude": [40.7075, 40.75260, 40.7681],
            }
        ),
        out + f"int_times_{unit}.parquet",
    )
pq.write_table(
    pa.table(
        {
            "tpep_pickup_datetime": np.array([5, 1454313600], dtype=np.int64),
            "tpep_dropoff_datetime": np.array([6, 1454314800], dtype=np.int64),
            "pickup_longitude": [-73.9772, -74.01125],
            "pickup_latitude": [40.7527, 40.70760],
            "dropoff_longitude": [-74.0113, -73.97735],
            "dropoff_latitude": [40.7075, 40.75260],
        }
    ),
    out + "int_times_unknown_unit.parquet",
)
# a Parquet file cut short (a download that stopped half-way)
data = open(out + "yellow_tripdata_2009-01_sample.parquet", "rb").read()
os.makedirs(out + "truncated", exist_ok=True)
open(out + "truncated/yellow_tripdata_2009-01_cut.parquet", "wb").write(data[: len(data) // 2])
