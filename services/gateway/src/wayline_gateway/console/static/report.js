var WaylineReport=(()=>{})();
